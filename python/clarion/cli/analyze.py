"""``clarion analyze``: run a Clarify analysis config on a data file (:func:`clarion.analyze`)."""

from __future__ import annotations

import argparse
import sys

from clarion.cli._common import (
    EXIT_OK,
    add_dask_arguments,
    add_input_arguments,
    add_model_arguments,
    add_run_arguments,
    cli_warnings,
    model_from_args,
)

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``clarion analyze``."""
    add_input_arguments(parser)  # --config, --data, --output
    add_model_arguments(parser)  # --model | --endpoint, --trusted, --timeout, --retries
    add_run_arguments(parser)  # --overwrite, --skip-bad-rows, --chunk-rows, --memory-budget, --quiet
    add_dask_arguments(parser)  # --dask-scheduler | --dask-workers


def run(args: argparse.Namespace) -> int:
    """``clarion analyze``: returns an exit code of :mod:`clarion.cli`."""
    with cli_warnings("analyze"):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from clarion.distributed import cluster
    from clarion.job import analyze

    model = model_from_args(args)
    # a Dask client while --dask-scheduler / --dask-workers is given
    with cluster(getattr(args, "dask_scheduler", None), getattr(args, "dask_workers", None)) as client:
        result = analyze(
            args.config,
            args.data,
            model=model,
            output_dir=args.output,
            progress=not args.quiet,
            overwrite=args.overwrite,
            skip_bad_rows=args.skip_bad_rows,
            chunk_rows=args.chunk_rows,
            memory_budget=args.memory_budget,
            dask_client=client,
        )
    if not args.quiet:
        print(result.summary(), file=sys.stdout)
    return EXIT_OK
