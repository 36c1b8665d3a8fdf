"""The Amazon ECS backend: each shard of a step as one ECS task (Fargate, Fargate Spot, EC2 GPU).

- fargate:     Fargate's allowed task sizes (lint and run time share it; pure, cheap)
- submission:  JobRequest -> one RunTask call per shard (pure)
- outcome:     stopped tasks -> failure classes (pure)
- client:      EcsTasks, the one place that talks to ECS and CloudWatch Logs
- backend:     EcsBackend: run or reattach, wait (in the task or deferred), enforce the timeout, collect
- trigger:     EcsStepTrigger, the small serializable wait in the triggerer
- definitions: task definitions from the settings, registered by `mlbatch deploy`
"""
