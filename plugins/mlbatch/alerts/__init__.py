"""Failure and success alerts: their text, delivery to Slack as task callbacks, and connection checks."""
