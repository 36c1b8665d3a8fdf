"""What the AWS Batch and ECS backends share; each imports this package, never the other backend.

- throttle:    one backoff rule for throttled calls (the Amazon provider's)
- shared_polling: one poller for every step waiting in a triggerer (up to 100 ids a describe call)
- conventions: the cancel reason, the OOM exit code, tags, the per-child summary line
- definitions: worker image -> definition name and content hash, and the deploy plan
- logs:        what a finished remote step prints: each shard's log lines, capped
- polling:     RemoteHandle and PollingBackend: the wait loop, the submission log line,
               start deadlines and the outcome of a finished shard
- trigger:     PollingTrigger: the wait loop in the triggerer
"""
