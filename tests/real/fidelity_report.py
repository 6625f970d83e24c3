"""Print how far the fake switch agrees with a real FreeSWITCH.

    uv run python tests/real/fidelity_report.py [--runs N] [--verbose] [SCENARIO ...]

Starts a private FreeSWITCH from the bundle (or uses ``GENESIS_TRIO_ESL=host:port:password``),
runs every scenario of ``_fidelity_scenarios.py`` ``--runs`` times on it and once on a
``FakeFreeSWITCH``, and prints the agreement per category (see ``_fidelity_kit.py`` for the
method) and, with ``--verbose``, every difference. ``docs/testing.md`` quotes its output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import trio

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from genesis_trio.testing import FakeFreeSWITCH  # noqa: E402
from real._fidelity_kit import (  # noqa: E402
    Comparison,
    Transcript,
    compare,
    identify,
    record,
    summary,
)
from real._fidelity_scenarios import PARSER_SCENARIOS, SCENARIOS  # noqa: E402


@contextlib.contextmanager
def real_switch() -> Iterator[tuple[str, int, str]]:
    configured = os.environ.get("GENESIS_TRIO_ESL")
    if configured:
        host, port, password = configured.split(":", 2)
        yield host, int(port), password
        return
    from real_switch import running_freeswitch

    with running_freeswitch() as switch:
        yield switch.host, switch.port, switch.password


async def measure(
    address: tuple[str, int, str], names: list[str], runs: int
) -> dict[str, Comparison]:
    results: dict[str, Comparison] = {}
    real_target = await identify("real", *address)
    for name in names:
        scenario = {**SCENARIOS, **PARSER_SCENARIOS}[name]
        reals: list[Transcript] = [await record(real_target, scenario) for _ in range(runs)]
        async with FakeFreeSWITCH().running() as fake:
            fake_target = await identify("fake", fake.host, fake.port, fake.password)
            fake_transcript = await record(fake_target, scenario, within=20, tolerate_failure=True)
        results[name] = compare(reals, fake_transcript)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("scenarios", nargs="*")
    options = parser.parse_args()
    names = options.scenarios or list(SCENARIOS)
    parsers = [] if options.scenarios else list(PARSER_SCENARIOS)
    with real_switch() as address:
        results = trio.run(measure, address, names, options.runs)
        parser_results = trio.run(measure, address, parsers, options.runs) if parsers else {}
    total = Comparison()
    for name, comparison in results.items():
        total.merge(comparison)
        if options.verbose:
            print(f"== {name}")
            print(summary(comparison))
            for difference in comparison.differences:
                print("   ", difference)
    print(f"fake/real agreement over {len(results)} scenarios ({options.runs} real runs each):")
    print(summary(total))
    if parser_results:
        parsing = Comparison()
        for name, comparison in parser_results.items():
            parsing.merge(comparison)
            if options.verbose:
                print(f"== {name} (a parser of issue 9)")
                for difference in comparison.differences:
                    print("   ", difference)
        print("the fake's value parsers (issue 9), separately:")
        print(summary(parsing))


if __name__ == "__main__":
    main()
