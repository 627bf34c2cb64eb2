"""``python -m service.serve_cli serve ...``: the ``bentoml`` command line, with crashed workers
replaced within about a second.

BentoML's process manager (circus) notices a dead worker only when it checks its processes,
and BentoML 1.4 hard-codes that check to every 10 s (``create_standalone_arbiter``'s
``check_delay``; its comment blames health checks of the old runner servers, which this
service does not have). A SIGKILLed worker was therefore replaced after 0-10 s, on top of
the replacement's own start. Here the check runs every ``TAXI_PROCESS_CHECK_S`` seconds
(default 1, common/settings.py). tests/service/test_worker_crash.py kills a worker and
watches the replacement.
"""

from __future__ import annotations

from common.settings import Settings


def main() -> None:
    from bentoml._internal.utils import circus

    original = circus.create_standalone_arbiter
    delay = Settings().process_check_s

    def arbiter(watchers, **kwargs):
        kwargs.setdefault("check_delay", delay)
        return original(watchers, **kwargs)

    # serve_http imports the name from this module when it runs, so the wrapper is what it gets
    circus.create_standalone_arbiter = arbiter
    from bentoml_cli.cli import cli

    cli(prog_name="bentoml")


if __name__ == "__main__":
    main()
