"""Typed settings: defaults, then a YAML config file, then NIMBUS_* environment variables.

Nested sections use a double underscore in the environment, e.g.
NIMBUS_IDENTITY__TOKEN_EXPIRATION=600.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ALL_SERVICES = ("identity", "placement", "image", "network", "compute")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nimbus"


class IdentitySettings(BaseModel):
    token_expiration: int = Field(3600, ge=60, description="token lifetime in seconds")
    # OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = Field(19456, ge=19456)
    argon2_time_cost: int = Field(2, ge=2)
    argon2_parallelism: int = Field(1, ge=1)
    max_active_keys: int = Field(3, ge=2)
    admin_user: str = "admin"
    admin_project: str = "admin"
    admin_password: str | None = None  # generated on first start when not set
    policy_file: Path | None = None


class NetworkSettings(BaseModel):
    """Networking: segmentation ranges, provider networks and what the bootstrap creates."""

    vxlan_vni_ranges: list[str] = Field(default_factory=lambda: ["1:16777215"],
                                        description="'min:max' VXLAN VNI ranges")
    vlan_ranges: list[str] = Field(default_factory=lambda: ["physnet1:100:4094"],
                                   description="'physnet:min:max' VLAN ranges")
    flat_networks: list[str] = Field(default_factory=lambda: ["public", "physnet1"],
                                     description="physical networks usable as flat")
    tenant_network_type: str = "vxlan"
    global_mtu: int = Field(1500, ge=68)
    base_mac: str = "fa:16:3e:00:00:00"
    dns_domain: str = "openstacklocal."
    agent_down_time: int = Field(75, ge=5, description="seconds without a heartbeat = dead")
    bootstrap: bool = True
    public_network: str = "public"
    public_physical_network: str = "public"
    public_cidr: str = "172.24.4.0/24"
    public_pool: tuple[str, str] = ("172.24.4.2", "172.24.4.254")
    private_network: str = "private"
    private_cidr: str = "10.0.0.0/26"
    router_name: str = "router1"
    policy_file: Path | None = None


class PlacementSettings(BaseModel):
    """Placement: only its policy overrides (its behaviour follows the API reference)."""

    policy_file: Path | None = None


class ImageStoreSettings(BaseModel):
    """One backing store of the image service."""

    type: str = "file"
    description: str = ""
    path: Path | None = None  # file stores: default <state_dir>/images/<store id>
    read_only: bool = False
    weight: int = 0
    # http stores (always read-only): hosts ("host" or "host:port") whose http(s) URLs users
    # may add as image locations; the image service fetches from them. Empty: none.
    allowed_hosts: list[str] = Field(default_factory=list)


class ImageSettings(BaseModel):
    """The image service: stores, limits, quotas and format inspection."""

    stores: dict[str, ImageStoreSettings] = Field(default_factory=lambda: {
        "local": ImageStoreSettings(description="Local filesystem store")})
    default_store: str = "local"
    staging_dir: Path | None = None  # default <state_dir>/images/staging
    image_size_cap: int = Field(1 << 40, ge=1, description="largest image, in bytes")
    # Reject data that has no recognisable header for an inspectable disk_format (a qcow2
    # that is not a qcow2). Detected formats that disagree with disk_format, and unsafe
    # images (backing or data files), are always rejected.
    require_format_match: bool = True
    # Show image locations (and let owners add http locations), as Glance's
    # show_multiple_locations: store URLs become visible to image owners.
    show_multiple_locations: bool = False
    # Cache images on this node's disk (the /v2/cache API); <state_dir>/images/cache by default.
    cache_dir: Path | None = None
    import_methods: list[str] = Field(default_factory=lambda: ["glance-direct", "copy-image"])
    # Per-project quotas ("image_count_total", "image_count_uploading", "image_size_total"
    # and "image_stage_total", sizes in MiB as in Glance's unified limits); -1 is unlimited.
    quotas: dict[str, int] = Field(default_factory=dict)
    project_quotas: dict[str, dict[str, int]] = Field(default_factory=dict)
    property_quota: int = Field(128, ge=0)
    tag_quota: int = Field(128, ge=0)
    member_quota: int = Field(128, ge=0)
    stale_upload_seconds: int = Field(600, ge=5, description="saving/importing with no "
                                      "progress for this long is reverted by the cleanup")
    cleanup_interval: int = Field(60, ge=1)
    fsync: bool = False
    # A guest disk image registered (public) at start; <state_dir>/guest-images/* also are.
    bootstrap_image: Path | None = None
    policy_file: Path | None = None


class QemuSettings(BaseModel):
    """The QEMU virt driver (compute.virt_driver = "qemu")."""

    instances_path: Path | None = None  # default <state_dir>/instances
    # "tcg" by default: nested KVM hangs on these machines (reference/dataplane-findings.md).
    accel: str = Field("tcg", pattern="^(tcg|kvm)$")
    binary: str = "qemu-system-x86_64"
    tb_size_mb: int = Field(32, ge=0, description="TCG translation cache; 0: QEMU's default")
    machine: str = "pc"
    # Firmware for guests booted straight from a kernel (images with kernel_id/ramdisk_id):
    # qboot starts a kernel in milliseconds where SeaBIOS takes about half a second under
    # TCG. Used when the file exists; "" for QEMU's default.
    direct_boot_firmware: str = "/usr/share/qemu/qboot.rom"
    shutdown_timeout: float = Field(10.0, ge=0, description="seconds a guest gets to power "
                                    "off on ACPI before it is stopped hard")


class ComputeSettings(BaseModel):
    """Compute: what this process runs (API, conductor and scheduler; compute agents), the
    fake hypervisors' size, and the scheduler's filters and weighers."""

    api: bool = Field(True, description="run the API, conductor and scheduler here")
    # Compute agents (hypervisor hosts) run by this process. None: one named after this
    # machine (the all-in-one's local host); [] for none.
    hosts: list[str] | None = None
    fake_hosts: int = Field(0, ge=0, description="extra fake hypervisors fake-1 … fake-N")
    virt_driver: str = "fake"
    fake_vcpus: int = Field(16, ge=1)
    fake_memory_mb: int = Field(32768, ge=128)
    fake_disk_gb: int = Field(512, ge=1)
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)
    reserved_host_memory_mb: int = Field(0, ge=0)
    default_availability_zone: str = "nova"
    internal_availability_zone: str = "internal"
    report_interval: float = Field(10.0, gt=0, description="heartbeat period, seconds")
    service_down_time: float = Field(60.0, gt=0, description="no heartbeat for this long = down")
    sync_power_state_interval: float = Field(600.0, gt=0)
    scheduler_filters: list[str] = Field(default_factory=lambda: [
        "compute", "availability_zone", "image_properties", "server_group_affinity",
        "server_group_anti_affinity", "aggregate_instance_extra_specs",
        "aggregate_multitenancy_isolation", "same_host", "different_host"])
    scheduler_weighers: list[str] = Field(default_factory=lambda: [
        "ram", "cpu", "disk", "build_failure", "affinity", "io_ops"])
    max_placement_results: int = Field(1000, ge=1)
    max_attempts: int = Field(3, ge=1, description="builds tried on this many hosts")
    host_subset_size: int = Field(1, ge=1)
    # Seconds a build waits for network-vif-plugged (its ports wired) before the guest counts
    # as ACTIVE; 0: do not wait. None: 300 with a real hypervisor, 0 with the fake one.
    vif_plugging_timeout: float | None = Field(None, ge=0)
    vif_plugging_is_fatal: bool = True
    max_limit: int = Field(1000, ge=1, description="largest page of a list")
    allow_resize_to_same_host: bool = True  # as DevStack sets it
    shelved_offload_time: int = Field(0, ge=-1, description="0: offload at once; -1: never")
    qemu: QemuSettings = Field(default_factory=lambda: QemuSettings())
    bootstrap: bool = True
    policy_file: Path | None = None

    def plugging_timeout(self) -> float:
        if self.vif_plugging_timeout is not None:
            return self.vif_plugging_timeout
        return 0.0 if self.virt_driver == "fake" else 300.0


class NodeSettings(BaseModel):
    """One node's data plane: where its bridges, taps, guests, DHCP servers and routers live."""

    # A named network namespace holding the node's bridges, taps and QEMU processes;
    # None: the root namespace (a real compute node).
    namespace: str | None = None
    tunnel_ip: str | None = None  # VXLAN underlay address of this node
    # physical network -> interface (in the node namespace) its flat networks bridge to
    physical_interface_mappings: dict[str, str] = Field(default_factory=dict)
    agents: list[str] = Field(default_factory=lambda: ["l2", "dhcp", "l3", "metadata"])


class DataplaneSettings(BaseModel):
    """The real data plane run by this process: network agents for each node listed, and
    the node namespace the QEMU driver of a compute host of the same name uses."""

    enabled: bool = False
    # host name -> node. Hosts not listed use `default_node`.
    nodes: dict[str, NodeSettings] = Field(default_factory=dict)
    default_node: NodeSettings = Field(default_factory=lambda: NodeSettings())
    # Prefixed to the qdhcp-<network> and qrouter-<router> namespaces the agents make, so
    # that several clouds (or tests) on one machine keep apart.
    namespace_prefix: str = ""
    state_path: Path | None = None  # dnsmasq files, sockets; default <state_dir>/dataplane
    # Agents re-check taps they wait for this often (seconds).
    device_poll_interval: float = Field(0.2, gt=0)

    def node(self, host: str) -> NodeSettings:
        return self.nodes.get(host, self.default_node)


class ServiceDatabase(BaseModel):
    database_url: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NIMBUS_", env_nested_delimiter="__", extra="ignore"
    )

    state_dir: Path = Field(default_factory=default_state_dir)
    config_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5000
    # URL clients use to reach this process; derived from host/port when empty.
    public_url: str | None = None
    region: str = "RegionOne"
    # Distributed wiring: where each service listens, e.g. {"identity": "http://10.0.0.5:5000"}.
    # Services missing here are reached at `endpoint` (the all-in-one gateway).
    service_urls: dict[str, str] = Field(default_factory=dict)
    # None: one SQLite file per service in state_dir. Otherwise a SQLAlchemy URL shared by
    # every service (each service owns distinct tables and its own migration history).
    database_url: str | None = None
    bus_url: str = "memory://"
    services: list[str] = Field(default_factory=lambda: list(ALL_SERVICES))
    max_body_bytes: int = 1024 * 1024
    log_level: str = "warning"
    identity: IdentitySettings = Field(default_factory=lambda: IdentitySettings())
    placement: PlacementSettings = Field(default_factory=lambda: PlacementSettings())
    image: ImageSettings = Field(default_factory=lambda: ImageSettings())
    network: NetworkSettings = Field(default_factory=lambda: NetworkSettings())
    compute: ComputeSettings = Field(default_factory=lambda: ComputeSettings())
    dataplane: DataplaneSettings = Field(default_factory=lambda: DataplaneSettings())
    # Per-service overrides of database_url, e.g. NIMBUS_DATABASES__IDENTITY__DATABASE_URL.
    databases: dict[str, ServiceDatabase] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlSource(settings_cls))

    @property
    def endpoint(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"

    def database_url_for(self, service: str) -> str:
        override = self.databases.get(service)
        if override and override.database_url:
            return override.database_url
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.state_dir / (service + '.db')}"


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the config file named by NIMBUS_CONFIG_FILE, else <state_dir>/nimbus.yaml."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("NIMBUS_CONFIG_FILE")
        if not path:
            state = os.environ.get("NIMBUS_STATE_DIR")
            folder = Path(state) if state else default_state_dir()
            path = str(folder / "nimbus.yaml")
        p = Path(path)
        if not p.is_file():
            return {}
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{p}: the config file must hold a mapping")
        return data
