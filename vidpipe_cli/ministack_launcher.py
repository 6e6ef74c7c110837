"""ministack as the local stack runs it: the pinned emulator, unchanged, with
our workarounds around it, each in a module of its own that says why:

* vidpipe_cli/ministack_snapshots.py: the state survives a hard kill (issue 17);
* vidpipe_cli/ministack_streaming_reads.py: S3 reads send only the bytes asked
  for, from disk, in pieces, instead of the whole object at once (issue 16);
* vidpipe_cli/ministack_quick_invocations.py: a warm invocation answers as soon
  as its function does, not 50 ms later when it logged nothing (issue 18);
* vidpipe_cli/ministack_layer_cache.py: a Lambda layer is unzipped once per run,
  not once per cold worker (issue 18);
* vidpipe_cli/ministack_worker_reuse.py: a burst of calls waits a moment for a
  warm worker rather than starting more workers than there are cores (issue 18);
* vidpipe_cli/ministack_background_priority.py: the functions that work in the
  background run below those that answer people (issue 18);
* vidpipe_cli/ministack_prewarm.py: ``vidpipe up`` starts the workers of the
  functions every upload runs before the first upload (issue 18).

Started by ``vidpipe up`` on ministack's own interpreter (``.venv-ministack``)
as ``python -P``, so this folder's modules never shadow an installed package
(vidpipe_cli/packaging.py would): the two modules are loaded by their paths.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def load_beside(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"vidpipe_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    import ministack.app as ministack_app  # type: ignore[import-not-found]  # ministack's own venv
    from ministack.core import lambda_runtime, persistence  # type: ignore[import-not-found]
    from ministack.services import lambda_svc, s3  # type: ignore[import-not-found]

    snapshots_module = load_beside("ministack_snapshots")
    streaming_reads = load_beside("ministack_streaming_reads")
    quick_invocations = load_beside("ministack_quick_invocations")
    layer_cache = load_beside("ministack_layer_cache")
    worker_reuse = load_beside("ministack_worker_reuse")
    background_priority = load_beside("ministack_background_priority")
    prewarm = load_beside("ministack_prewarm")
    if not persistence.PERSIST_STATE:
        raise SystemExit("ministack_launcher: PERSIST_STATE=1 is required")
    os.makedirs(persistence.STATE_DIR, exist_ok=True)
    snapshots = snapshots_module.RuntimeSnapshots(persistence.STATE_DIR)
    streaming_reads.install(s3, ministack_app)
    quick_invocations.install(lambda_runtime)
    layer_cache.install(lambda_runtime)
    worker_reuse.install(lambda_runtime, lambda_svc)
    background_priority.install(lambda_runtime)
    print(
        f"vidpipe: snapshots of {', '.join(snapshots_module.RUNTIME_SERVICES)} within "
        f"{snapshots_module.SNAPSHOT_DELAY_S} s of a change, S3 reads streamed from disk, "
        "warm invocations not held for logs, layers unzipped once, warm workers first, "
        f"background functions at niceness {background_priority.BACKGROUND_NICENESS} "
        "(see vidpipe_cli/ministack_launcher.py)",
        file=sys.stderr,
        flush=True,
    )
    # ministack's main() serves the module's `app`: serve ours around it.
    app = snapshots_module.with_snapshots(ministack_app.app, snapshots)
    app = prewarm.with_prewarm(app, lambda_svc, lambda_runtime)
    ministack_app.app = streaming_reads.remembering_receive(app)
    ministack_app.main()


if __name__ == "__main__":
    main()
