"""The sweeper: step workers left running after their Airflow task instance stopped are removed.

A task process killed hard (SIGKILL, a lost host) never runs its cleanup, and a deferred AWS step
marked failed before its trigger started has nobody watching its job: their containers, Batch jobs
and ECS tasks would run on, holding capacity the host no longer counts. The maintenance DAG
`mlbatch_sweeper` (dags/mlbatch_sweeper.py) runs `sweep_all` every 10 minutes.

Modules: resources (what a step left running, and the rule that makes it an orphan: pure),
run (one sweep over the backends' listings, each action logged), airflow_states (the task
instance states, through the Task SDK, from inside the sweeper's task). Each backend lists and
stops its own: backends/docker/sweep.py, backends/aws_batch/sweep.py, backends/ecs/sweep.py.
"""
