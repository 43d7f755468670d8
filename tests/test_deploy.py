"""The deployment files, checked structurally: ``docker compose config`` cannot run here (no
Docker daemon, no compose plugin), so this reads them as YAML and checks the wiring a broken
deployment would get wrong."""

from __future__ import annotations

from typing import Any

import yaml

from tests import ROOT

LONG_RUNNING = ("api", "slack", "discord", "pgbouncer")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_prod_profile_pools_through_pgbouncer_and_migrates_first() -> None:
    services = _compose()["services"]
    prod = {name for name, s in services.items() if "prod" in s.get("profiles", [])}
    assert prod == {"pgbouncer", "migrate", "api", "slack", "discord"}
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    assert services["migrate"]["command"] == ["backtrack", "migrate"]
    assert "pgbouncer" not in services["migrate"]["environment"]["DATABASE_URL"]  # migrations go direct
    for name in ("api", "slack", "discord"):
        service = services[name]
        env = service["environment"]
        assert "@pgbouncer:6432/" in env["DATABASE_URL"] and env["BACKTRACK_DB_PREPARE_THRESHOLD"] == "off"
        assert "@postgres:5432/" in env["BACKTRACK_LOCK_DATABASE_URL"]  # advisory locks need a session
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["command"][:2] == ["backtrack", name]
    assert services["api"]["deploy"]["replicas"] == 2 and services["slack"]["deploy"]["replicas"] == 2
    assert "replicas" not in services["discord"].get("deploy", {})  # one gateway session per token
    assert services["discord"]["environment"]["BACKTRACK_HEALTH_PORT"] == "8080"
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name
    assert services["bot"]["profiles"] == ["try"] and "postgres" not in [
        name for name, s in services.items() if s.get("profiles")]  # the database is in both


def test_the_kubernetes_sketch_is_wired_the_same_way() -> None:
    documents = [d for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
                 for d in yaml.safe_load_all(path.read_text()) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {("Job", "backtrack-migrate"), ("Deployment", "pgbouncer"), ("Service", "pgbouncer"),
            ("Deployment", "backtrack-api"), ("Service", "backtrack-api"), ("Deployment", "backtrack-slack"),
            ("Deployment", "backtrack-discord")} <= kinds
    for d in documents:
        assert d["apiVersion"] and d["metadata"]["name"]
        if d["kind"] != "Deployment" or d["metadata"]["name"] == "pgbouncer":
            continue
        [container] = d["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "pooled-url"
        assert env["BACKTRACK_LOCK_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "direct-url"
        assert env["BACKTRACK_DB_PREPARE_THRESHOLD"]["value"] == "off"
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert d["spec"]["selector"]["matchLabels"] == d["spec"]["template"]["metadata"]["labels"]
    [job] = [d for d in documents if d["kind"] == "Job"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["backtrack", "migrate"]
