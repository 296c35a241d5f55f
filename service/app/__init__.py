"""The use cases: what the gRPC servicers, the scheduler and the CLI's embedded service call.

`tasks.py` is the task workflow (submit, pre-check, vote, execute, cancel, schedules),
`runs.py` the pool that runs tasks, `outbox.py` the delivery side of the notification outbox,
`catalog.py` what a user may know of the datasources, `uploads.py` links for uploading files.
`kinds.py` is the seam: the workflow and the run pool look a task's kind up there, so imports
(`imports.py`) and generations (`generation.py`) plug in beside exports without either knowing
their details.
"""
