"""The `nimbus` command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from nimbus.common.settings import Settings
from nimbus.image.cli import image_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Nimbus: an OpenStack-compatible cloud in one Python package.")
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(image_app, name="image")
console = Console()

StateDir = Annotated[Path | None, typer.Option(help="Where the cloud keeps its state.")]
Port = Annotated[int | None, typer.Option(help="Port of the all-in-one endpoint.")]
Host = Annotated[str | None, typer.Option(help="Address to listen on.")]


def load_settings(state_dir: Path | None = None, port: int | None = None,
                  host: str | None = None) -> Settings:
    if state_dir is not None:
        os.environ["NIMBUS_STATE_DIR"] = str(state_dir.resolve())
    overrides: dict[str, object] = {}
    if port is not None:
        overrides["port"] = port
    if host is not None:
        overrides["host"] = host
    return Settings(**overrides)  # type: ignore[arg-type]


def _pid(settings: Settings) -> int | None:
    path = settings.state_dir / "nimbus.pid"
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _running_endpoint(settings: Settings) -> str:
    """Where the background cloud listens: recorded at start, whatever flags made it."""
    try:
        recorded = json.loads((settings.state_dir / "status.json").read_text())
        return str(recorded.get("endpoint") or settings.endpoint)
    except (OSError, ValueError):
        return settings.endpoint


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/identity/v3", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@app.command()
def up(state_dir: StateDir = None, port: Port = None, host: Host = None,
       foreground: Annotated[bool, typer.Option(help="Stay attached (for systemd).")] = False,
       timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 60,
       fake_hosts: Annotated[int | None, typer.Option(
           help="Extra fake hypervisors (fake-1 … fake-N) besides the local host.")] = None,
       dataplane: Annotated[bool | None, typer.Option(
           help="Real QEMU guests, bridges, DHCP and routers in the network namespace "
                "nimbus-node (default: when this machine can: root, QEMU, dnsmasq).")] = None,
       expose_external: Annotated[bool, typer.Option(
           help="Give this machine the external network's gateway address (on the "
                "interface nimbus-ext), so floating IPs answer from its shell.")] = False,
       ) -> None:
    """Start the all-in-one cloud (in the background unless --foreground)."""
    from nimbus.cli import localnode

    settings = load_settings(state_dir, port, host)
    if fake_hosts is not None:
        settings.compute.fake_hosts = fake_hosts
    if dataplane is None:
        lacking = localnode.missing()
        dataplane = not lacking
        if lacking and not foreground:
            console.print(f"[yellow]data plane off[/] (this machine lacks "
                          f"{', '.join(lacking)}): servers run on the fake hypervisor")
    if dataplane:
        localnode.configure(settings)
    if foreground:
        from nimbus.cli.server import run

        if settings.dataplane.enabled:
            asyncio.run(localnode.prepare(settings.dataplane.default_node, settings,
                                          expose_external=expose_external))
        run(settings)
        return
    if (pid := _pid(settings)) and _ready(_running_endpoint(settings)):
        console.print(f"[yellow]Nimbus is already running[/] (pid {pid}).")
        _print_access(settings, _running_endpoint(settings))
        return
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    status_file = settings.state_dir / "status.json"
    status_file.unlink(missing_ok=True)
    log = open(settings.state_dir / "nimbus.log", "ab")  # noqa: SIM115 - owned by the child
    args = [sys.executable, "-m", "nimbus.cli.main", "up", "--foreground",
            "--state-dir", str(settings.state_dir)]
    if port is not None:
        args += ["--port", str(port)]
    if host is not None:
        args += ["--host", host]
    if fake_hosts is not None:
        args += ["--fake-hosts", str(fake_hosts)]
    args += ["--dataplane" if dataplane else "--no-dataplane"]
    if expose_external:
        args += ["--expose-external"]
    started = time.monotonic()
    child = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    (settings.state_dir / "nimbus.pid").write_text(str(child.pid))
    with console.status("starting nimbus…") as status:
        while time.monotonic() - started < timeout:
            if child.poll() is not None:
                console.print(f"[red]Nimbus exited with code {child.returncode}[/]; see "
                              f"{settings.state_dir / 'nimbus.log'}")
                raise typer.Exit(1)
            try:
                status_data = json.loads(status_file.read_text())
            except (OSError, ValueError):
                status_data = {}
            # Only our child's own report counts (not a stale file, not another process).
            stage = (status_data.get("stage", "starting")
                     if status_data.get("pid") == child.pid else "starting")
            status.update(f"nimbus: {stage}…")
            if stage == "listening" and child.poll() is None and _ready(settings.endpoint):
                break
            time.sleep(0.05)
        else:
            console.print(f"[red]Nimbus did not become ready in {timeout:.0f} s[/]")
            raise typer.Exit(1)
    console.print(f"[green]Nimbus is up[/] in {time.monotonic() - started:.1f} s "
                  f"(pid {child.pid}).")
    _print_access(settings, settings.endpoint)


def _print_access(settings: Settings, endpoint: str) -> None:
    from nimbus.cli import cloudsyaml

    password_file = settings.state_dir / "admin-password"
    password = settings.identity.admin_password or password_file.read_text().strip()
    auth_url = endpoint + "/identity/v3"
    entry = cloudsyaml.cloud_entry(auth_url, password, settings.region)
    written = [settings.state_dir / "clouds.yaml",
               Path.home() / ".config" / "openstack" / "clouds.yaml"]
    for path in written:
        cloudsyaml.write(path, "nimbus", entry)
    console.print(f"  endpoint     {auth_url}")
    console.print(f"  admin        user [bold]admin[/], project [bold]admin[/], "
                  f"password [bold]{password}[/]")
    console.print(f"  clouds.yaml  {written[1]} (cloud [bold]nimbus[/]; copy in {written[0]})")
    console.print("  try          export OS_CLOUD=nimbus; openstack token issue")


@app.command()
def down(state_dir: StateDir = None,
         purge: Annotated[bool, typer.Option(
             help="Also remove the data plane: guests, DHCP servers, routers and the "
                  "nimbus-node namespace (otherwise they keep running and the next "
                  "`nimbus up` takes them over).")] = False) -> None:
    """Stop the background all-in-one cloud."""
    settings = load_settings(state_dir)
    pid = _pid(settings)
    if pid is None:
        console.print("Nimbus is not running.")
        if purge:
            _purge(settings)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
    (settings.state_dir / "nimbus.pid").unlink(missing_ok=True)
    console.print("Nimbus stopped.")
    if purge:
        _purge(settings)


def _purge(settings: Settings) -> None:
    from nimbus.cli import localnode

    removed = asyncio.run(localnode.purge(settings))
    console.print(f"Data plane removed ({len(removed)} namespace(s)).")


@app.command()
def status(state_dir: StateDir = None) -> None:
    """Say whether the all-in-one cloud runs and answers."""
    settings = load_settings(state_dir)
    pid = _pid(settings)
    endpoint = _running_endpoint(settings)
    answering = pid is not None and _ready(endpoint)
    console.print(f"pid: {pid or '-'}  endpoint: {endpoint}  "
                  f"answering: {'yes' if answering else 'no'}")
    if not answering:
        raise typer.Exit(1)


@app.command()
def serve(services: Annotated[list[str], typer.Argument(help="Services to run here.")],
          state_dir: StateDir = None, port: Port = None, host: Host = None,
          compute_host: Annotated[list[str] | None, typer.Option(
              help="Run only a compute agent for this hypervisor host (repeatable); the "
                   "API, conductor and scheduler run elsewhere.")] = None,
          ) -> None:
    """Run some services in the foreground (the distributed wiring)."""
    from nimbus.cli.server import run

    settings = load_settings(state_dir, port, host)
    if compute_host:
        settings.compute.hosts = list(compute_host)
        settings.compute.api = False
    run(settings, services)


@db_app.command("sync")
def db_sync(state_dir: StateDir = None,
            service: Annotated[list[str] | None, typer.Option(help="Only these.")] = None,
            ) -> None:
    """Bring every service's tables to the newest migration."""
    import importlib

    from nimbus.db.engine import Database
    from nimbus.db.migrate import upgrade

    settings = load_settings(state_dir)

    async def sync() -> None:
        for name in service or settings.services:
            models = importlib.import_module(f"nimbus.{name}.models")
            package = importlib.import_module(f"nimbus.{name}")
            migrations = Path(str(package.__file__)).parent / "migrations"
            db = Database(settings.database_url_for(name))
            await upgrade(db, name, migrations, models.Base.metadata)
            await db.dispose()
            console.print(f"{name}: up to date")

    asyncio.run(sync())


@keys_app.command("rotate")
def keys_rotate(state_dir: StateDir = None) -> None:
    """Add a new signing key; tokens signed by the last few keys stay valid."""
    from nimbus.common.tokens import KeyRing

    settings = load_settings(state_dir)
    ring = KeyRing(settings.state_dir / "token-keys", settings.identity.max_active_keys)
    kid = ring.rotate()
    console.print(f"new primary key {kid}; restart running identity processes to use it")


# `nimbus image build-test`, beside the image service's upload/download.
@image_app.command("build-test")
def image_build_test(
        output: Annotated[Path | None, typer.Option(
            help="Where to write the qcow2 (default: <state_dir>/guest-images/"
                 "nimbus-test.qcow2, which `nimbus up` registers).")] = None,
        register: Annotated[bool, typer.Option(
            help="Also upload it to the running cloud as the public image nimbus-test.")] = False,
        force: Annotated[bool, typer.Option(help="Rebuild even if up to date.")] = False,
        cache: Annotated[Path | None, typer.Option(
            help="Downloaded .debs (default: <state_dir>/guest-image-cache).")] = None,
        state_dir: StateDir = None,
        clouds_yaml: Annotated[Path | None, typer.Option(
            help="For --register (default: <state_dir>/clouds.yaml).")] = None,
        cloud: Annotated[str, typer.Option(help="For --register: its cloud.")] = "nimbus",
        name: Annotated[str, typer.Option(help="For --register: the image name.")]
        = "nimbus-test",
) -> None:
    """Build the CirrOS-like test guest (Debian cloud kernel, busybox, dropbear) as a qcow2."""
    from nimbus.guestimage import BuildError, build, default_paths
    from nimbus.guestimage.register import RegisterError
    from nimbus.guestimage.register import register as upload
    from nimbus.image.cli import connect

    settings = load_settings(state_dir)
    default_output, default_cache = default_paths(settings.state_dir)
    output = output or default_output
    try:
        result = build(output, cache or default_cache, force=force,
                       log=lambda msg: console.print(f"  {msg}"))
    except BuildError as exc:
        console.print(f"[red]cannot build the test image:[/] {exc}")
        raise typer.Exit(1) from exc
    size = result.manifest["size"] / 1e6
    state = "built" if result.built else "up to date"
    console.print(f"[green]{output}[/] {state} ({size:.1f} MB, kernel "
                  f"{result.manifest['kernel']})")
    if register:
        try:
            url, headers = connect(clouds_yaml or settings.state_dir / "clouds.yaml", cloud)
            done = upload(output, result.manifest, url, headers, name=name,
                          log=lambda msg: console.print(f"  {msg}"))
        except (RegisterError, httpx.HTTPError) as exc:
            console.print(f"[red]cannot register the test image:[/] {exc} "
                          "(is the cloud up? `nimbus up`)")
            raise typer.Exit(1) from exc
        what = "registered" if done.uploaded else "already registered"
        gone = f"; replaced {', '.join(done.replaced)}" if done.replaced else ""
        console.print(f"image {name} {done.image_id} {what}{gone}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
