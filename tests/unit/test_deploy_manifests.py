"""The ways of running a cluster (cluster.yaml, deploy/serve.yaml, deploy/rayservice.yaml)
start the same Serve application, validate against Ray's own schemas, carry no secret; and
`scaling.ingress` becomes the Gateway's replica options."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from actors.settings import Settings
from domain.config import IngressScaling, parse_config

ROOT = Path(__file__).resolve().parents[2]


def _yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text(encoding="utf-8"))


def _env_file(path: str) -> dict[str, str]:
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture
def serve_app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`serve_app`, imported without building the app or setting Serve's variables."""
    monkeypatch.setenv("CB_BUILD_ON_IMPORT", "0")
    monkeypatch.setenv("CB_SERVE_MODE", "proxy")
    return importlib.import_module("serve_app")


# ------------------------------------------------------------------ scaling.ingress


def test_equal_bounds_are_a_fixed_count_and_unequal_ones_autoscale() -> None:
    assert IngressScaling(min_replicas=3, max_replicas=3).serve_options() == {"num_replicas": 3}
    options = IngressScaling(min_replicas=2, max_replicas=6).serve_options()
    assert options == {
        "autoscaling_config": {
            "min_replicas": 2,
            "initial_replicas": 2,
            "max_replicas": 6,
            "target_ongoing_requests": 24.0,
            "upscale_delay_s": 10.0,
            "downscale_delay_s": 120.0,
        }
    }


def test_bounds_out_of_order_are_refused_with_the_path() -> None:
    data = _yaml("config/default.yaml")
    data["scaling"]["ingress"].update(min_replicas=4, max_replicas=2)
    with pytest.raises(ValidationError, match="max_replicas is below min_replicas"):
        parse_config(data)
    data["scaling"]["ingress"].update(min_replicas=0, max_replicas=2)
    with pytest.raises(ValidationError, match=r"scaling\.ingress\.min_replicas"):
        parse_config(data)


def test_the_default_configuration_runs_one_replica() -> None:
    assert parse_config(_yaml("config/default.yaml")).scaling.ingress.serve_options() == {
        "num_replicas": 1
    }


def test_serve_accepts_the_autoscaling_options() -> None:
    from ray.serve.config import AutoscalingConfig

    options = IngressScaling(min_replicas=1, max_replicas=4).serve_options()
    checked = AutoscalingConfig(**options["autoscaling_config"])
    assert (checked.min_replicas, checked.max_replicas) == (1, 4)


def test_the_application_takes_its_replicas_from_the_configuration(
    serve_app: ModuleType, tmp_path: Path
) -> None:
    data = _yaml("config/default.yaml")
    data["scaling"]["ingress"].update(min_replicas=2, max_replicas=5, target_ongoing_requests=8)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    settings = Settings.from_env(config_path=str(path), data_dir=str(tmp_path / "data"))
    built = serve_app.build(settings)._bound_deployment._deployment_config
    assert built.autoscaling_config.min_replicas == 2
    assert built.autoscaling_config.max_replicas == 5
    assert built.autoscaling_config.target_ongoing_requests == 8
    fixed = serve_app.build(settings, replicas=3)._bound_deployment._deployment_config
    assert fixed.num_replicas == 3 and fixed.autoscaling_config is None


def test_without_the_access_log_a_replica_makes_no_log_record_per_request(
    serve_app: ModuleType, tmp_path: Path
) -> None:
    """Serve's replica logs each request at INFO and filters the line out when the access
    log is off: with its logger at WARNING the record is never made. The access log on
    (`CB_ACCESS_LOG=1`, read at import) keeps INFO."""
    settings = Settings.from_env(data_dir=str(tmp_path / "data"))
    config = serve_app.build(settings)._bound_deployment._deployment_config.logging_config
    assert config["enable_access_log"] is False and config["log_level"] == "WARNING"
    assert serve_app.REPLICA_LOG["log_level"] == "WARNING"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CB_ACCESS_LOG", "1")
        logged = importlib.reload(serve_app)
        try:
            assert logged.REPLICA_LOG == {"enable_access_log": True, "log_level": "INFO"}
        finally:
            patch.delenv("CB_ACCESS_LOG")
            importlib.reload(serve_app)


# ------------------------------------------------------------------ the manifests


def test_cluster_yaml_passes_ray_ups_own_validation() -> None:
    """What `ray up` does before it reaches any machine: fill in defaults, validate against
    Ray's schema, bootstrap the (local) provider."""
    from ray.autoscaler._private.commands import _bootstrap_config

    config = _bootstrap_config(_yaml("cluster.yaml"), no_config_cache=True)
    assert config["head_node_type"] in config["available_node_types"]
    head = " ".join(config["head_start_ray_commands"])
    assert "serve deploy deploy/serve.yaml" in head
    assert "--port=6379" in head and "secrets.env" in head
    assert all("secrets.env" in c for c in config["worker_start_ray_commands"] if "start" in c)


def test_serve_yaml_is_a_valid_serve_config_of_this_project(serve_app: ModuleType) -> None:
    from ray.serve.schema import ServeDeploySchema

    config = ServeDeploySchema.model_validate(_yaml("deploy/serve.yaml"))
    (application,) = config.applications
    module, attribute = application.import_path.split(":")
    assert module == "serve_app" and hasattr(serve_app, attribute)
    (gateway,) = application.deployments
    assert gateway.name == serve_app.Gateway.name
    env = application.runtime_env["env_vars"]
    assert (ROOT / Path(env["CB_CONFIG"]).relative_to("/opt/circuit-breaker")).is_file()
    parse_config(_yaml(str(Path(env["CB_CONFIG"]).relative_to("/opt/circuit-breaker"))))
    # the application's scaling is one scaling.ingress would give
    scaling = gateway.autoscaling_config
    assert (
        scaling
        == IngressScaling(
            min_replicas=scaling["min_replicas"],
            max_replicas=scaling["max_replicas"],
            target_ongoing_requests=scaling["target_ongoing_requests"],
            upscale_delay_s=scaling["upscale_delay_s"],
            downscale_delay_s=scaling["downscale_delay_s"],
        ).serve_options()["autoscaling_config"]
    )


def test_no_secret_travels_in_a_runtime_env(serve_app: ModuleType) -> None:
    env = _yaml("deploy/serve.yaml")["applications"][0]["runtime_env"]["env_vars"]
    assert not [name for name, value in env.items() if serve_app._secret(name, str(value))]


def test_the_rayservice_runs_the_same_application_with_secrets_from_a_secret() -> None:
    service = _yaml("deploy/rayservice.yaml")
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    assert yaml.safe_load(service["spec"]["serveConfigV2"]) == _yaml("deploy/serve.yaml")
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == importlib.import_module("ray").__version__
    pods = [cluster["headGroupSpec"]["template"]] + [
        group["template"] for group in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        for container in pod["spec"]["containers"]:
            secret = {"secretRef": {"name": "circuit-breaker-secrets"}}
            assert container["envFrom"] == [secret]
            assert "env" not in container  # no value written into the manifest


def test_every_node_declares_the_tenant_resource_the_application_asks_for() -> None:
    """deploy/serve.yaml puts each tenant actor on one unit of CB_TENANT_RESOURCE: a node kind
    that declares none could never hold a tenant, so both manifests give every kind some."""
    import json
    import re

    env = _yaml("deploy/serve.yaml")["applications"][0]["runtime_env"]["env_vars"]
    resource = env["CB_TENANT_RESOURCE"]
    assert env["CB_TENANT_PLACEMENT"] == "spread"
    Settings(tenant_placement="spread", tenant_resource=resource)  # values Settings takes
    config = _yaml("cluster.yaml")
    starts = [config["head_start_ray_commands"], config["worker_start_ray_commands"]]
    for commands in starts:
        (start,) = [c for c in commands if "ray start" in c]
        declared = json.loads(re.search(r"--resources='([^']+)'", start)[1])  # type: ignore[index]
        assert declared[resource] > 0
    cluster = _yaml("deploy/rayservice.yaml")["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        # KubeRay's form: a JSON object quoted once more for the `ray start` command line
        declared = json.loads(json.loads(group["rayStartParams"]["resources"]))
        assert declared[resource] > 0


def test_the_secrets_file_names_what_the_nodes_need_and_holds_no_value(
    serve_app: ModuleType,
) -> None:
    example = _env_file("deploy/secrets.env.example")
    assert example["CB_DATABASE_URL"].startswith("postgresql://")
    assert {"CB_MASTER_KEY", "CB_ADMIN_TOKEN", "CB_JWT_SECRET"} <= set(example)
    assert example.pop("RAY_AUTH_MODE") == "token"  # the nodes and the CLI share the token
    assert "RAY_AUTH_TOKEN" in example
    assert all("CHANGE-ME" in value for value in example.values())
    # each is a secret the gateway keeps out of Ray's runtime_env
    assert all(serve_app._secret(name, value) for name, value in example.items())


def test_the_image_installs_the_project_where_the_manifests_look_for_it() -> None:
    dockerfile = (ROOT / "deploy/Dockerfile").read_text(encoding="utf-8")
    ray_version = importlib.import_module("ray").__version__
    assert f"FROM rayproject/ray:{ray_version}-py" in dockerfile
    assert "WORKDIR /opt/circuit-breaker" in dockerfile


def test_tests_own_servers_start_without_any_forwarded_variable(serve_app: ModuleType) -> None:
    """A preset's variables (GROQ_API_KEY in the test cluster) must not leak into a test's
    own server, which would then see a provider configured."""
    from tests.support.server_process import OWN_ENV_PREFIXES

    assert set(serve_app.FORWARDED_ENV_PREFIXES) - {"RAY_SERVE_"} <= set(OWN_ENV_PREFIXES)


# ------------------------------------------------------------------ placing tenants


def test_tenant_placement_comes_from_the_nodes_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from actors.placement import HEAD_RESOURCE, singleton_options, tenant_options

    assert tenant_options(Settings.from_env()) == {}  # Ray's own placement, no cap
    monkeypatch.setenv("CB_TENANT_PLACEMENT", "Spread")
    monkeypatch.setenv("CB_TENANT_RESOURCE", "cb_tenant")
    monkeypatch.setenv("CB_TENANT_START_TIMEOUT_S", "7.5")
    settings = Settings.from_env()
    assert settings.tenant_start_timeout_s == 7.5
    assert tenant_options(settings) == {
        "scheduling_strategy": "SPREAD",
        "resources": {"cb_tenant": 1},
    }
    assert singleton_options() == {"resources": {HEAD_RESOURCE: 0.001}}
    monkeypatch.setenv("CB_TENANT_PLACEMENT", "pack")
    with pytest.raises(ValueError, match="CB_TENANT_PLACEMENT must be default or spread"):
        Settings.from_env()
