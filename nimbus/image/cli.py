"""`nimbus image upload|download`: large images with a progress bar, streamed both ways.

A typer sub-application; the nimbus CLI mounts it with
``app.add_typer(image_app, name="image")``. It speaks the public API with the credentials
`nimbus up` wrote to <state_dir>/clouds.yaml (or any clouds.yaml and cloud name).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

image_app = typer.Typer(help="Upload and download images, with progress.",
                        no_args_is_help=True)
console = Console(stderr=True)
CHUNK = 4 << 20

CloudsYaml = Annotated[Path | None, typer.Option(
    help="clouds.yaml to read (default: the one `nimbus up` wrote in the state folder).")]
CloudName = Annotated[str, typer.Option(help="Cloud in clouds.yaml.")]


def _clouds_yaml(path: Path | None) -> Path:
    if path is not None:
        return path
    from nimbus.common.settings import Settings

    return Settings().state_dir / "clouds.yaml"


def connect(clouds_yaml: Path | None, cloud: str) -> tuple[str, dict[str, str]]:
    """(image endpoint, auth headers) for a cloud of a clouds.yaml."""
    path = _clouds_yaml(clouds_yaml)
    try:
        entry: dict[str, Any] = yaml.safe_load(path.read_text())["clouds"][cloud]
    except (OSError, KeyError, TypeError) as exc:
        raise typer.BadParameter(f"no cloud {cloud!r} in {path}") from exc
    auth = entry["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"],
        "domain": {"name": auth.get("user_domain_name", "Default")}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {
            "name": auth.get("project_domain_name", "Default")}}}}}
    resp = httpx.post(auth["auth_url"].rstrip("/") + "/auth/tokens", json=body, timeout=30)
    if resp.status_code != 201:
        raise typer.BadParameter(f"cannot log in to {auth['auth_url']}: {resp.text}")
    interface = entry.get("interface", "public")
    region = entry.get("region_name")
    for service in resp.json()["token"]["catalog"]:
        if service["type"] != "image":
            continue
        for endpoint in service["endpoints"]:
            if endpoint["interface"] == interface and region in (None, endpoint["region_id"]):
                return endpoint["url"].rstrip("/"), {"X-Auth-Token":
                                                     resp.headers["X-Subject-Token"]}
    raise typer.BadParameter(f"the cloud {cloud!r} has no image service")


def _progress() -> Progress:
    return Progress("[progress.description]{task.description}", BarColumn(),
                    DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def _read(path: Path, progress: Progress, task: Any) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            progress.advance(task, len(chunk))
            yield chunk


def _check(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        try:
            message = resp.json().get("message", resp.text)
        except ValueError:
            message = resp.text
        console.print(f"[red]error {resp.status_code}: {message}")
        raise typer.Exit(1)


@image_app.command("upload")
def upload(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
           name: Annotated[str | None, typer.Option(help="Default: the file name.")] = None,
           disk_format: Annotated[str, typer.Option()] = "raw",
           container_format: Annotated[str, typer.Option()] = "bare",
           visibility: Annotated[str, typer.Option()] = "private",
           prop: Annotated[list[str] | None, typer.Option(
               "--property", help="key=value, repeatable")] = None,
           clouds_yaml: CloudsYaml = None, cloud: CloudName = "nimbus") -> None:
    """Create an image and stream a file into it."""
    url, headers = connect(clouds_yaml, cloud)
    body: dict[str, Any] = {"name": name or file.stem, "disk_format": disk_format,
                            "container_format": container_format, "visibility": visibility}
    for item in prop or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--property {item!r} is not key=value")
        body[key] = value
    with httpx.Client(base_url=url, headers=headers, timeout=None) as client:
        resp = client.post("/v2/images", json=body)
        _check(resp)
        image_id = resp.json()["id"]
        size = file.stat().st_size
        with _progress() as progress:
            task = progress.add_task(f"upload {file.name}", total=size)
            resp = client.put(f"/v2/images/{image_id}/file", content=_read(file, progress, task),
                              headers={"Content-Type": "application/octet-stream",
                                       "x-openstack-image-size": str(size)})
        _check(resp)
        image = client.get(f"/v2/images/{image_id}").json()
    print(json.dumps(image, indent=2))


@image_app.command("download")
def download(image_id: str, output: Annotated[Path, typer.Argument(dir_okay=False)],
             clouds_yaml: CloudsYaml = None, cloud: CloudName = "nimbus") -> None:
    """Stream an image's data to a file."""
    url, headers = connect(clouds_yaml, cloud)
    with httpx.Client(base_url=url, headers=headers, timeout=None) as client, \
            client.stream("GET", f"/v2/images/{image_id}/file") as resp:
        if resp.status_code >= 400:
            resp.read()
            _check(resp)
        if resp.status_code == 204:
            console.print(f"image {image_id} has no data")
            raise typer.Exit(1)
        total = int(resp.headers.get("content-length", 0)) or None
        tmp = output.with_name(f".{output.name}.part")
        with _progress() as progress, open(tmp, "wb") as fh:
            task = progress.add_task(f"download {output.name}", total=total)
            for chunk in resp.iter_raw(CHUNK):
                fh.write(chunk)
                progress.advance(task, len(chunk))
        tmp.replace(output)
    console.print(f"saved {output}")
