"""checkov's Kubernetes checks on rendered instances: no failure allowed.

checkov runs from its own venv (``.venv-checkov``, pinned by ``requirements-checkov.lock``; ``make test`` builds
it), as a subprocess with a time limit, on instances rendered by the real Kustomize the way approvals render them:
images pinned by digest (a tag-only image fails CKV_K8S_43 by design, and the registry pins every approved image).
"""

import json
import subprocess
from dataclasses import replace
from pathlib import Path

from instances.kube.render import render
from tests.instances.test_isolation import PINNED

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
TIMEOUT = 300

# Checks skipped for every object, and why. None today: an exception that concerns one object is written on that
# object instead (below), so that it cannot hide the same failure elsewhere.
SKIPPED_CHECKS: dict[str, str] = {}
# Skipped on one object by an annotation of the base (checkov.io/skip1), and why:
ANNOTATED_SKIPS = {
    # The official postgres image's entrypoint and data directory belong to its user, UID 999 (CKV_K8S_40 wants
    # a UID >= 10000); every other container runs with a high UID.
    ("CKV_K8S_40", "StatefulSet.{namespace}.smile-database"),
}

SPECS = (
    # The smallest instance without the options, and a large one with all of them.
    replace(PINNED, instance="checkov-small", size="small", backup_storage_cidrs=(), backup_storage_port=443),
    replace(PINNED, instance="checkov-large", tls_cluster_issuer="letsencrypt"),
)


def test_rendered_instances_pass_checkov(tmp_path):
    assert CHECKOV.exists(), (
        f"{CHECKOV} is missing: run `make .venv-checkov/.installed` (`make test` does) to install checkov from "
        "requirements-checkov.lock"
    )
    files, expected_skips, resources = [], set(), 0
    for spec in SPECS:
        rendered = render(spec)
        path = tmp_path / f"{spec.instance}.yaml"
        path.write_text(rendered.yaml)
        files += ["--file", str(path)]
        expected_skips |= {(check, resource.format(namespace=spec.namespace)) for check, resource in ANNOTATED_SKIPS}
        resources += len(rendered.objects)
    skip = ["--skip-check", ",".join(SKIPPED_CHECKS)] if SKIPPED_CHECKS else []
    # --skip-download: no call to the vendor's platform (the checks are all in the package).
    command = [str(CHECKOV), *files, "--framework", "kubernetes", "--output", "json", "--skip-download", *skip]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert done.returncode in (0, 1), f"checkov could not run ({done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report  # a list when several frameworks answer
    summary, results = report["summary"], report["results"]
    failures = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in results.get("failed_checks", [])]
    assert summary["failed"] == 0, "checkov failures:\n" + "\n".join(failures)
    # checkov counts some objects more than once (its own resource model): at least every object was read.
    assert summary["parsing_errors"] == 0 and summary["resource_count"] >= resources
    assert summary["passed"] > 400  # the checks did run
    skipped = {(c["check_id"], c["resource"]) for c in results.get("skipped_checks", [])}
    assert skipped == expected_skips
