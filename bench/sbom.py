"""Packages and vulnerabilities: ``ramparts sbom`` on a 300-package function, and matching it
against a full-PyPI-sized OSV database.

The function tree is generated: 300 distributions as pip installs them (``.dist-info`` with
a METADATA of realistic size -- headers, classifiers, a 2-40 KB long description --,
``top_level.txt``, RECORD and some module files), a quarter of them under a layer's
``python/lib/python3.12/site-packages/``, a few duplicated in both places. The same tree is
zipped as a deployment package.

The database is generated too (the real ``PyPI/all.zip`` cannot be downloaded here):
15,000 advisories in the OSV format osv.dev publishes, over 5,000 package names, with
what real records carry -- PYSEC/GHSA ids, CVE and GHSA aliases, 1-3 ECOSYSTEM intervals,
GIT ranges, ``versions`` lists (10-400 entries, pre- and post-releases), CVSS v3 vectors,
``database_specific``, references and a 1-3 KB ``details`` --, one JSON file per advisory in
a zip. 150 of the tree's packages have advisories.

Timed (median over rounds, in process):

* ``sbom dir``   scan the directory + CycloneDX document + serialise;
* ``sbom zip``   the same from the zip;
* ``db load``    load the zip: JSON parse, compile the ranges, index by name;
* ``match``      match the 300 packages (the index already loaded);
* ``findings``   match + prioritise + OCSF findings serialised as JSON lines.

Memory: the Python heap allocated by ``db load`` (tracemalloc peak, and what the loaded
index keeps), and the maximum RSS of a whole ``ramparts vulns --json`` run in a child.

    .venv/bin/python bench/sbom.py [--quick] [--rounds N] [--packages N] [--advisories N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from typing import Any

import _common

sys.path.insert(0, _common.REPO)
sys.path.insert(0, _common.LAYER)

from collectors.vulns.findings import findings, match_inventory
from collectors.vulns.inventory import scan
from collectors.vulns.osv import load
from collectors.vulns.sbom import dumps, to_cyclonedx

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "http",
    "json",
    "yaml",
    "async",
    "cloud",
    "aws",
    "lambda",
    "client",
    "server",
    "core",
    "utils",
    "crypto",
    "auth",
    "token",
    "cache",
    "queue",
    "stream",
    "data",
    "frame",
    "parse",
    "render",
    "template",
    "orm",
    "sql",
    "graph",
    "image",
    "audio",
    "text",
    "html",
    "xml",
    "proto",
    "grpc",
    "rest",
    "api",
    "schema",
    "valid",
    "config",
    "log",
    "trace",
    "metric",
]
LICENSES = ["MIT License", "Apache Software License", "BSD License", "ISC License (ISCL)"]


def package_names(rng: random.Random, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        parts = rng.sample(WORDS, rng.choice((1, 2, 2, 3)))
        names.add(rng.choice(("-", "_", "-")).join(parts) + ("" if rng.random() < 0.7 else "py"))
    return sorted(names)


def version(rng: random.Random) -> str:
    v = f"{rng.randint(0, 40)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}"
    r = rng.random()
    if r < 0.05:
        v += rng.choice(("a1", "b2", "rc1", "rc2"))
    elif r < 0.08:
        v += ".post1"
    return v


def metadata_text(rng: random.Random, name: str, ver: str) -> str:
    lic = rng.choice(LICENSES)
    head = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {ver}",
        f"Summary: The {name} package",
        "Home-page: https://example.invalid/" + name,
        "Author: Someone",
        "Author-email: someone@example.invalid",
        f"License: {lic.split()[0]}",
        f"Classifier: License :: OSI Approved :: {lic}",
        "Classifier: Programming Language :: Python :: 3",
        "Classifier: Operating System :: OS Independent",
        "Requires-Python: >=3.8",
    ]
    head += [f"Requires-Dist: {rng.choice(WORDS)}>=1.0" for _ in range(rng.randint(0, 6))]
    head.append("Description-Content-Type: text/markdown")
    body = ("Lorem ipsum dolor sit amet. " * 40 + "\n") * rng.randint(2, 40)
    return "\n".join(head) + "\n\n" + body


def make_tree(root: str, names: list[str], rng: random.Random) -> list[tuple[str, str]]:
    installed = []
    for i, name in enumerate(names):
        ver = version(rng)
        places = [""] if i % 4 else ["python/lib/python3.12/site-packages/"]
        if i % 37 == 0:
            places.append("python/")  # the same version in the function and in a layer
        for place in places:
            base = os.path.join(root, place)
            d = os.path.join(base, f"{name.replace('-', '_')}-{ver}.dist-info")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "METADATA"), "w", encoding="utf-8") as fh:
                fh.write(metadata_text(rng, name, ver))
            mod = name.replace("-", "_")
            with open(os.path.join(d, "top_level.txt"), "w", encoding="utf-8") as fh:
                fh.write(mod + "\n")
            pkg = os.path.join(base, mod)
            os.makedirs(pkg, exist_ok=True)
            files = [f"{mod}/__init__.py"] + [f"{mod}/m{k}.py" for k in range(rng.randint(1, 8))]
            for f in files:
                with open(os.path.join(base, f), "w", encoding="utf-8") as fh:
                    fh.write("x = 1\n" * 50)
            with open(os.path.join(d, "RECORD"), "w", encoding="utf-8") as fh:
                fh.write("".join(f"{f},sha256=abc,300\n" for f in files))
        installed.append((name, ver))
    return installed


def zip_dir(root: str, out: str) -> None:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for dirpath, _, files in os.walk(root):
            for f in files:
                full = os.path.join(dirpath, f)
                zf.write(full, os.path.relpath(full, root))


VECTORS = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N",
    "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
]


def advisory(rng: random.Random, n: int, name: str, hit: tuple[str, str] | None) -> dict[str, Any]:
    ghsa = "GHSA-" + "-".join("".join(rng.choices("23456789cfghjmpqrvwx", k=4)) for _ in range(3))
    is_ghsa = rng.random() < 0.5
    vid = ghsa if is_ghsa else f"PYSEC-{rng.randint(2014, 2025)}-{n}"
    cve = f"CVE-{rng.randint(2014, 2025)}-{rng.randint(1000, 99999)}"
    events: list[dict[str, str]] = []
    lo = rng.randint(0, 20)
    for k in range(rng.choice((1, 1, 2, 3))):
        major = lo + 3 * k
        events.append({"introduced": "0" if k == 0 and rng.random() < 0.4 else f"{major}.0"})
        if rng.random() < 0.9:
            events.append({"fixed": f"{major}.{rng.randint(1, 30)}.{rng.randint(0, 9)}"})
        else:
            events.append({"last_affected": f"{major}.{rng.randint(1, 30)}"})
    if hit is not None:  # make sure the installed version of this package is affected
        events = [{"introduced": "0"}, {"fixed": "999.0"}]
    versions = sorted({version(rng) for _ in range(rng.choice((10, 20, 40, 80, 150, 400)))})
    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": vid,
        "modified": "2024-06-01T12:00:00Z",
        "published": "2023-01-15T08:30:00Z",
        "aliases": [cve] + ([] if is_ghsa else [ghsa]),
        "summary": f"{rng.choice(WORDS)} issue in {name}",
        "details": ("An attacker can do something bad with crafted input. " * rng.randint(20, 60)),
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name, "purl": f"pkg:pypi/{name}"},
                "ranges": [
                    {
                        "type": "GIT",
                        "repo": f"https://github.com/example/{name}",
                        "events": [{"introduced": "0"}, {"fixed": f"{rng.getrandbits(160):040x}"}],
                    },
                    {"type": "ECOSYSTEM", "events": events},
                ],
                "versions": versions,
            }
        ],
        "references": [
            {"type": "ADVISORY", "url": f"https://github.com/advisories/{ghsa}"},
            {"type": "WEB", "url": f"https://nvd.nist.gov/vuln/detail/{cve}"},
            {"type": "FIX", "url": f"https://github.com/example/{name}/commit/{n:040x}"},
        ],
    }
    if rng.random() < 0.7:
        record["severity"] = [{"type": "CVSS_V3", "score": rng.choice(VECTORS)}]
    if is_ghsa:
        record["database_specific"] = {
            "cwe_ids": ["CWE-79"],
            "severity": rng.choice(("LOW", "MODERATE", "HIGH", "CRITICAL")),
            "github_reviewed": True,
        }
    return record


def make_db(out: str, n: int, tree: list[tuple[str, str]], rng: random.Random) -> None:
    others = [f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}" for i in range(5000)]
    hits = tree[::2][:150]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            if i < len(hits):
                name, ver = hits[i]
                rec = advisory(rng, i, name, (name, ver))
            elif i < 3 * len(hits):
                rec = advisory(rng, i, tree[rng.randrange(len(tree))][0], None)
            else:
                rec = advisory(rng, i, rng.choice(others), None)
            zf.writestr(f"{rec['id']}.json", json.dumps(rec, indent=2))


def timed(fn: Callable[[], Any], rounds: int) -> tuple[list[float], Any]:
    samples, result = [], None
    for _ in range(rounds):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples, result


CHILD = """
import argparse, sys
sys.path[:0] = [{repo!r}, {layer!r}]
from ramparts_cli import vulns
p = argparse.ArgumentParser(); sp = p.add_subparsers(); vulns.register(sp)
a = p.parse_args(["vulns", "--db", {db!r}, {tree!r}, "--json"])
a.func(a)
"""


def child_run(db: str, tree: str) -> tuple[float, float, int]:
    """Wall ms, max RSS MiB and output lines of ``ramparts vulns --json`` in a fresh process."""
    code = CHILD.format(repo=_common.REPO, layer=_common.LAYER, db=db, tree=tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    wall = (time.perf_counter() - t0) * 1000
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if out.returncode not in (0, 1):
        raise SystemExit(f"child failed ({out.returncode}): {out.stderr[-2000:]}")
    return wall, max(rss, before) / 1024, len(out.stdout.splitlines())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, 3,000 advisories")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--packages", type=int, default=300)
    ap.add_argument("--advisories", type=int, default=None)
    args = ap.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 9)
    n_adv = args.advisories or (3000 if args.quick else 15000)
    rng = random.Random(8)

    with tempfile.TemporaryDirectory(prefix="ramparts-bench-sbom-") as tmp:
        tree = os.path.join(tmp, "function")
        names = package_names(rng, args.packages)
        installed = make_tree(tree, names, rng)
        fn_zip = os.path.join(tmp, "function.zip")
        zip_dir(tree, fn_zip)
        db_zip = os.path.join(tmp, "all.zip")
        make_db(db_zip, n_adv, installed, rng)
        sizes = {
            "tree_files": sum(len(f) for _, _, f in os.walk(tree)),
            "zip_mib": os.path.getsize(fn_zip) / 2**20,
            "db_mib": os.path.getsize(db_zip) / 2**20,
        }
        print(
            f"tree: {args.packages} packages, {sizes['tree_files']} files; zip "
            f"{sizes['zip_mib']:.1f} MiB; database: {n_adv} advisories, {sizes['db_mib']:.1f} MiB "
            f"zipped; {rounds} rounds"
        )

        def sbom(path: str) -> Callable[[], int]:
            return lambda: len(dumps(to_cyclonedx(scan(path))))

        samples: dict[str, list[float]] = {}
        samples["sbom dir"], _ = timed(sbom(tree), rounds)
        samples["sbom zip"], _ = timed(sbom(fn_zip), rounds)
        samples["db load"], database = timed(lambda: load(db_zip), max(1, rounds // 3))
        inv = scan(tree)
        samples["match"], matched = timed(lambda: match_inventory(database, inv), rounds)

        def all_findings() -> int:
            out = findings(match_inventory(database, inv), internet_reachable=True)
            return sum(len(json.dumps(f.to_ocsf())) for f in out)

        samples["findings"], _ = timed(all_findings, rounds)
        affected = sum(1 for pm in matched if pm.matches)
        n_matches = sum(len(pm.matches) for pm in matched)
        components = len(to_cyclonedx(inv)["components"])

        database = matched = None  # free them before measuring the heap of a load
        gc.collect()
        tracemalloc.start()
        db = load(db_zip)
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del db
        gc.collect()
        wall, rss, lines = child_run(db_zip, tree)

    rows = []
    for name, xs in samples.items():
        lo, hi = _common.bootstrap_ci(xs) if len(xs) > 2 else (min(xs), max(xs))
        rows.append([name, _common.median(xs), f"[{lo:.1f}, {hi:.1f}]", len(xs)])
    print()
    print(_common.table(["step", "median ms", "95% CI", "n"], rows))
    print()
    print(
        _common.table(
            ["measure", "value"],
            [
                ["distributions found / components", f"{len(inv.distributions)} / {components}"],
                [
                    "affected packages / advisories matched",
                    f"{affected} / {n_matches}",
                ],
                ["db load: heap peak MiB (tracemalloc)", peak / 2**20],
                ["db load: heap kept MiB (the index)", kept / 2**20],
                ["`ramparts vulns --json` child: wall ms", wall],
                ["`ramparts vulns --json` child: max RSS MiB", rss],
                ["`ramparts vulns --json` child: findings", lines],
            ],
        )
    )
    path = _common.write_results(
        "sbom",
        {
            "quick": args.quick,
            "machine": _common.machine(),
            "packages": args.packages,
            "advisories": n_adv,
            "sizes": sizes,
            "samples_ms": samples,
            "affected": affected,
            "heap_peak_mib": peak / 2**20,
            "heap_kept_mib": kept / 2**20,
            "child": {"wall_ms": wall, "max_rss_mib": rss, "findings": lines},
        },
    )
    print(f"results: {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
