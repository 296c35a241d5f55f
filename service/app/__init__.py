"""Use cases beyond exports: what submitting, pre-checking and running a task of each kind means.

`kinds.py` is the seam: the task workflow (`service/tasks.py`) and the run pool
(`service/exports.py`) look a task's kind up there, so imports and generations plug in beside
exports without either knowing their details.
"""
