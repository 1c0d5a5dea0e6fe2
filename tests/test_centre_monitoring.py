"""The alert rules and the Grafana dashboard a city starts with (docs/monitoring/, docs/operations.md).

Prometheus's own ``promtool`` (Debian's prometheus package) checks the rule file and runs its unit tests
(tests/data/centre-alerts.test.yml: each alert fires on its condition, and not short of it); every query of
the Grafana dashboard is checked by the same parser (as recording rules); docs/operations.md shows the rule
file as it is. That every metric they name exists in a real scrape is tests/test_centre_metrics.py's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "docs" / "monitoring"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args, cwd=None) -> subprocess.CompletedProcess:
    assert Path(PROMTOOL).exists(), "promtool not found: apt install prometheus (scripts/setup installs it)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_alert_rules_are_valid_and_each_fires_on_its_condition():
    checked = promtool("check", "rules", str(MONITORING / "centre-alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 9 rules found" in checked.stdout
    tested = promtool("test", "rules", "centre-alerts.test.yml", cwd=ROOT / "tests" / "data")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # every alert of the file has its unit test
    alerts = set(re.findall(r"- alert: (\w+)", (MONITORING / "centre-alerts.yml").read_text()))
    tests = set(re.findall(r"alertname: (\w+)", (ROOT / "tests" / "data" / "centre-alerts.test.yml").read_text()))
    assert alerts == tests


def test_every_grafana_query_parses(tmp_path):
    dash = json.loads((MONITORING / "centre-grafana.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    rules = {"groups": [{"name": "grafana", "rules": [{"record": f"grafana:query_{i}", "expr": e}
                                                      for i, e in enumerate(exprs)]}]}
    path = tmp_path / "grafana-queries.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_operations_md_shows_the_rule_file_as_it_is():
    doc = (ROOT / "docs" / "operations.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    rules = (MONITORING / "centre-alerts.yml").read_text()
    assert rules in blocks, "docs/operations.md: paste docs/monitoring/centre-alerts.yml into its yaml block"
    for alert in re.findall(r"- alert: (\w+)", rules):
        assert f"#### {alert}" in doc, f"docs/operations.md: no runbook for {alert}"
