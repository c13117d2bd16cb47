"""One job, whichever backend runs it: the interface ``burstmap run`` and the Python API follow.

Like Lithops' executor, the backend is chosen once (:class:`Backend`: the local engine, or a deployed state
machine on AWS) and everything after goes through the same :class:`Job`: ``wait`` (with progress),
``progress``, ``result`` (the output, or :class:`JobFailed` naming the first failing item),
``failed_items``, ``download_results`` and ``stats``. A job holds what it runs on (a local job: the S3
server and the worker processes), so close it, or use it as a context manager.

Reading results back is the same code for both (:mod:`burstmap.client.results`); a backend says where its
manifests are and which S3 client reads them.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol

from burstmap.client import results
from burstmap.client.job_input import JobInput
from burstmap.client.output_dir import OutputDir, claimed
from burstmap.client.results import DownloadedResults, S3Object
from burstmap.local.core.progress import Progress
from burstmap.runtime.results import ItemResult

__all__ = ["Backend", "DownloadedResults", "Job", "JobFailed", "JobNotFinished", "NoResults"]

OnProgress = Callable[[Progress], None]


class JobNotFinished(Exception):
    """`Job.result()` was called while the execution is still running (or, locally, before `wait`)."""


class NoResults(LookupError):
    """The job wrote no ResultWriter manifest (yet): there are no results to read."""


class JobFailed(Exception):
    """The execution ended without success; carries the ASL error name and cause, and the first
    failing item (lowest index) with the number of failed items, where the result files record them."""

    def __init__(
        self,
        execution_arn: str,
        status: str,
        error: str | None,
        cause: str | None,
        *,
        first_failure: ItemResult | None = None,
        failed_items: int = 0,
    ) -> None:
        self.execution_arn = execution_arn
        self.status = status
        self.error = error
        self.cause = cause
        self.first_failure = first_failure
        self.failed_items = failed_items
        super().__init__(f"execution {status}: {error or 'no error name'}: {cause or 'no cause given'}")


class Job(ABC):
    """One execution of a burstmap state machine, locally or on AWS."""

    _unreadable: ClassVar[tuple[type[Exception], ...]] = results.UNREADABLE
    """What finding or reading the results can raise (a backend adds its own errors)."""

    @property
    @abstractmethod
    def id(self) -> str:
        """The execution ARN (a local execution has one too, in the local account)."""

    @abstractmethod
    def wait(self, *, on_progress: OnProgress | None = None) -> Any:
        """Block until the execution ends, passing its progress to ``on_progress`` as it goes."""

    @abstractmethod
    def progress(self) -> Progress:
        """Item counts of the map runs now (``total`` None before the first map run lists its items)."""

    @abstractmethod
    def result(self) -> Any:
        """The execution output; JobFailed if it failed, JobNotFinished if it has not ended."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Figures of the run, added to the printed output by ``burstmap run --stats``."""

    @abstractmethod
    def interrupted(self) -> str:
        """What became of the job when its user stopped waiting (Ctrl-C, SIGTERM), for one line."""

    # ---- where the results are: each backend's own

    @abstractmethod
    def _results_s3(self) -> Any:
        """The S3 client that reads this job's result files."""

    @abstractmethod
    def _manifests(self) -> list[S3Object]:
        """The ResultWriter manifests of this execution, as far as it got."""

    def _no_results(self) -> NoResults:
        return NoResults(f"execution {self.id} wrote no ResultWriter manifest")

    def _reading_results(self) -> contextlib.AbstractContextManager[None]:
        """Wraps every read of the results (a backend may translate its errors)."""
        return contextlib.nullcontext()

    # ---- the same for every backend

    def failed_items(self) -> Iterator[ItemResult]:
        """Every failed item, streamed from the FAILED result files of every manifest."""
        with self._reading_results():
            yield from results.failed_items(self._results_s3(), self._manifests())

    def download_results(self, directory: Path | str | OutputDir) -> DownloadedResults:
        """Copy each manifest and its result files into ``directory`` and write failed_items.json, as a
        whole: ``directory`` ends up holding these files and nothing else (an earlier run's are replaced;
        a folder of other files is refused, see :mod:`burstmap.client.output_dir`). NoResults if the
        execution wrote no manifest (the folder is then left as it was)."""
        with claimed(directory) as output:
            return output.commit(self._write_results(output.staging()), execution=self.id)

    def save_results(self, output: OutputDir) -> DownloadedResults:
        """The end of a run into a claimed output folder: its results replace the folder's as a whole; a
        run that wrote no manifest (it failed before a map run) leaves an empty failed_items.json there."""
        try:
            written: DownloadedResults | None = self._write_results(output.staging())
        except NoResults:
            written = None
        return output.commit(written, execution=self.id)

    def _write_results(self, directory: Path) -> DownloadedResults:
        """The manifests, result files and failed_items.json, written into the (staging) ``directory``."""
        with self._reading_results():
            manifests = self._manifests()
            if not manifests:
                raise self._no_results()
            return results.download_results(self._results_s3(), manifests, directory)

    def _failed(self, status: str, error: str | None, cause: str | None) -> JobFailed:
        """The JobFailed of this execution, with its first failing item where the result files have it
        (results that cannot be read only lose that detail: the failure is reported anyway)."""
        try:
            with self._reading_results():
                first, count = results.first_failure(self._results_s3(), self._manifests())
        except self._unreadable:
            first, count = None, 0
        return JobFailed(self.id, status, error, cause, first_failure=first, failed_items=count)

    def close(self) -> None:  # noqa: B027 - a job on AWS holds nothing: it runs on without this process
        """Release what the job holds (the local engine's S3 server and worker processes)."""

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Backend(Protocol):
    """Where jobs run, chosen once: ``start`` returns the running (or, locally, ready) job."""

    cannot_start: ClassVar[tuple[type[BaseException], ...]]
    """The errors that mean a job could not start at all (bad options, an app that does not synthesize):
    one line for the user, not a failed execution."""

    def start(self, job_input: JobInput) -> Job: ...
