"""The classroom: the book's assignments handed out, checked and graded, with only the package installed.

- :mod:`~natmu_lite.classroom.handout`: the student notebooks (package data), by assignment;
- :mod:`~natmu_lite.classroom.checks`: each assignment's checks, with their points and rubric;
- :mod:`~natmu_lite.classroom.collect`: a class's submissions in a folder or zip, by student and assignment;
- :mod:`~natmu_lite.classroom.grade`: each submission graded in a process of its own, with limits;
- :mod:`~natmu_lite.classroom.gradebook`: the gradebook CSV and the feedback files;
- :mod:`~natmu_lite.classroom.selfcheck`: a student's check of their own work.

``natmu-lite handout`` and ``natmu-lite grade`` are the commands.
"""

from .checks import ASSIGNMENTS
from .selfcheck import check_file, self_check

__all__ = ["ASSIGNMENTS", "check_file", "self_check"]
