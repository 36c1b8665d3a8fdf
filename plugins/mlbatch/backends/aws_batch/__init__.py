"""The AWS Batch backend: a step's shards as one Batch job or array job.

- submission: JobRequest -> SubmitJob arguments (resources, array, retry strategy, tags)
- outcome:    Batch job descriptions -> failure classes, per-child summary
- client:     BatchJobs, the one place that talks to AWS (through the Amazon provider's hooks)
- backend:    AwsBatchBackend: submit or reattach, wait (in the task or deferred), collect
- trigger:    BatchStepTrigger, the small serializable wait that runs in the triggerer
- definitions: job definitions from settings, registered by `mlbatch deploy`
"""
