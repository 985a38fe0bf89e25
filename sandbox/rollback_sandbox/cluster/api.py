"""The HTTP face of the sandbox: discovery, CRUD, watch and patch on the Kubernetes API paths,
answering the way the real apiserver does (Status errors, Tables for kubectl, 410 on old
resourceVersions)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from rollback_sandbox.cluster import resources, selectors, tables
from rollback_sandbox.cluster.clock import Clock
from rollback_sandbox.cluster.errors import ApiError, bad_request
from rollback_sandbox.cluster.faults import Faults
from rollback_sandbox.cluster.patching import APPLY_PATCH
from rollback_sandbox.cluster.registry import Registry
from rollback_sandbox.cluster.resources import ResourceType
from rollback_sandbox.cluster.store import Event, Store

JsonDict = dict[str, Any]
log = logging.getLogger(__name__)

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
JSON_TYPES = ("application/json", "*/*", "application/*", "")


@dataclass
class ServerState:
    store: Store
    registry: Registry
    clock: Clock
    faults: Faults
    bookmark_interval: float = 5.0  # real seconds between BOOKMARK events on quiet watches


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=_dump(obj), status=status, content_type="application/json")


def _error(err: ApiError) -> web.Response:
    resp = _json(err.status(), err.code)
    if err.code == 429:
        resp.headers["Retry-After"] = "1"
    return resp


def _negotiate(accept: str) -> str:
    """`table`, `partial` or `json`, from the first media range of Accept we can serve."""
    if not accept.strip():
        return "json"
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0]
        opts = dict(p.split("=", 1) for p in pieces[1:] if "=" in p)
        if media not in JSON_TYPES:
            continue
        kind = opts.get("as")
        if kind is None:
            return "json"
        if kind == "Table" and opts.get("g") == "meta.k8s.io":
            return "table"
        if kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return "partial"
    raise ApiError(
        406, f"only the following media types are accepted: application/json, {accept!r} given"
    )


def _flag(value: str | None) -> bool:
    return value in ("true", "1", "True")


def _dry_run(query: Any) -> bool:
    values = query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f'Invalid dry run value: "{v}", supported values: "All"')
    return bool(values)


def _dry_run_option(options: Any) -> bool:
    """DeleteOptions carry dryRun in the body, which is where kubectl puts it."""
    values = options.get("dryRun") if isinstance(options, dict) else None
    for v in values or []:
        if v != "All":
            raise bad_request(f'Invalid dry run value: "{v}", supported values: "All"')
    return bool(values)


def _strip_type(obj: JsonDict) -> JsonDict:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool


class Api:
    def __init__(self, state: ServerState) -> None:
        self.s = state

    # ------------------------------------------------------------------ app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        latency = self.s.faults.latency
        if latency:
            await asyncio.sleep(latency)
        failure = self.s.faults.take(request.method, request.path_qs)
        if failure is not None:
            return _error(failure)
        try:
            return await handler(request)
        except ApiError as err:
            return _error(err)

    # ------------------------------------------------------------------ routing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return _json(
                {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"]}
            )
        head = parts[0]
        if head in ("healthz", "livez", "readyz") and len(parts) == 1:
            return web.Response(text="ok")
        if head == "version" and len(parts) == 1:
            return _json(VERSION)
        if head == "api":
            if len(parts) == 1:
                return _json(self._api_versions(request))
            group, version, rest = "", parts[1], parts[2:]
        elif head == "apis":
            if len(parts) == 1:
                return _json(self._group_list())
            if len(parts) == 2:
                return _json(self._group(parts[1]))
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise self._no_path()
        if not rest:
            return _json(self._resource_list(group, version))
        target = self._target(group, version, rest)
        return await self._dispatch(request, target)

    @staticmethod
    def _no_path() -> ApiError:
        return ApiError(404, "the server could not find the requested resource", details={})

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        watch_path = False
        if rest[0] == "watch":
            watch_path, rest = True, rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            inner = resources.lookup(group, version, rest[2])
            if inner is not None and inner.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise self._no_path()
        rt = resources.lookup(group, version, rest[0])
        if rt is None:
            raise self._no_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            raise self._no_path()
        if namespace is not None and not rt.namespaced:
            raise self._no_path()
        if rt.namespaced and namespace is None and name is not None:
            raise self._no_path()
        return Target(rt, namespace, name, sub, watch_path)

    async def _dispatch(self, request: web.Request, t: Target) -> web.StreamResponse:
        method = request.method
        q = request.query
        if t.name is None:
            if method == "GET":
                if t.watch_path or _flag(q.get("watch")):
                    return await self._watch(request, t)
                return self._list(request, t)
            if (method == "POST" and t.namespace is not None) or (
                method == "POST" and not t.rt.namespaced
            ):
                return await self._create(request, t)
            if method == "DELETE" and (t.namespace is not None or not t.rt.namespaced):
                return await self._delete_collection(request, t)
            raise self._not_allowed()
        ns = t.namespace or ""
        if method == "GET":
            if t.watch_path:
                return await self._watch(request, t)
            obj = self.s.registry.get(t.rt, ns, t.name)
            if t.subresource == "scale":
                return _json(self.s.registry.scale(t.rt, obj))
            return self._render_one(request, t.rt, obj)
        dry = _dry_run(q)
        if method == "PUT":
            body = await self._body(request)
            if t.subresource == "scale":
                return _json(self.s.registry.update_scale(t.rt, ns, t.name, body, dry_run=dry))
            return _json(
                self.s.registry.update(
                    t.rt, ns, t.name, body, subresource=t.subresource, dry_run=dry
                )
            )
        if method == "PATCH":
            content_type = request.content_type
            if content_type == APPLY_PATCH:
                raise ApiError(
                    415,
                    "server-side apply is not supported by the rollback-bot sandbox; "
                    "use client-side kubectl apply",
                )
            text = await request.text()
            if not text.strip():
                raise bad_request("the request body is empty, a patch was expected")
            try:
                patch = json.loads(text)
            except json.JSONDecodeError as exc:
                raise bad_request(f"the patch is not valid JSON: {exc}") from exc
            result = self.s.registry.patch(
                t.rt, ns, t.name, content_type, patch, subresource=t.subresource, dry_run=dry
            )
            return _json(result)
        if method == "DELETE" and t.subresource is None:
            options = await self._body(request, optional=True) or {}
            if "propagationPolicy" in q:
                options["propagationPolicy"] = q["propagationPolicy"]
            dry = dry or _dry_run_option(options)
            return _json(self.s.registry.delete(t.rt, ns, t.name, options, dry_run=dry))
        raise self._not_allowed()

    @staticmethod
    def _not_allowed() -> ApiError:
        return ApiError(405, "the server does not allow this method on the requested resource")

    @staticmethod
    async def _body(request: web.Request, *, optional: bool = False) -> Any:
        ctype = request.content_type
        raw = await request.read()
        if not raw.strip():
            if optional:
                return None
            raise bad_request("the request body is empty")
        yaml_types = ("application/yaml", "application/x-yaml", "text/yaml")
        if ctype not in (
            *yaml_types,
            "application/json",
            "",
            "text/plain",
            "application/octet-stream",
        ):
            # protobuf and CBOR bodies (kubectl's `create <generator>` commands) are not decoded
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json, application/yaml",
            )
        try:
            text = raw.decode("utf-8")
            return yaml.safe_load(text) if ctype in yaml_types else json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
            raise bad_request(f"the object provided is unrecognized: {exc}") from exc

    # ------------------------------------------------------------------ discovery

    def _api_versions(self, request: web.Request) -> JsonDict:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
            ],
        }

    def _group(self, group: str) -> JsonDict:
        for g in self._group_list()["groups"]:
            if g["name"] == group:
                return {"kind": "APIGroup", "apiVersion": "v1", **g}
        raise self._no_path()

    @staticmethod
    def _group_list() -> JsonDict:
        groups: list[JsonDict] = []
        for api_version, rts in resources.group_versions().items():
            group = rts[0].group
            if not group:
                continue
            gv = {"groupVersion": api_version, "version": rts[0].version}
            groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, group: str, version: str) -> JsonDict:
        api_version = f"{group}/{version}" if group else version
        rts = resources.group_versions().get(api_version)
        if not rts:
            raise self._no_path()
        out: list[JsonDict] = []
        for rt in rts:
            entry: JsonDict = {
                "name": rt.plural,
                "singularName": rt.singular,
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": list(rt.verbs),
            }
            if rt.short_names:
                entry["shortNames"] = list(rt.short_names)
            if rt.categories:
                entry["categories"] = list(rt.categories)
            out.append(entry)
            for sub in rt.subresources:
                item: JsonDict = {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": rt.kind,
                    "verbs": list(resources.SUBRESOURCE_VERBS),
                }
                if sub == "scale":
                    item.update(group="autoscaling", version="v1", kind="Scale")
                out.append(item)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": api_version,
            "resources": out,
        }

    # ------------------------------------------------------------------ reads

    def _selectors(
        self, request: web.Request, rt: ResourceType
    ) -> tuple[selectors.Selector, tuple[selectors.FieldRequirement, ...]]:
        q = request.query
        return (
            selectors.parse_label_selector(q.get("labelSelector", "")),
            selectors.parse_field_selector(q.get("fieldSelector", ""), rt.field_labels),
        )

    def _render_one(self, request: web.Request, rt: ResourceType, obj: JsonDict) -> web.Response:
        mode = _negotiate(request.headers.get("Accept", ""))
        if mode == "table":
            return _json(
                tables.table(
                    rt,
                    [obj],
                    self.s.clock.wall(),
                    resource_version=None,
                    include_object=request.query.get("includeObject", "Metadata"),
                )
            )
        if mode == "partial":
            return _json(
                {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                }
            )
        return _json(obj)

    def _list(self, request: web.Request, t: Target) -> web.Response:
        labels, fields = self._selectors(request, t.rt)
        mode = _negotiate(request.headers.get("Accept", ""))
        items = self.s.registry.list(t.rt, t.namespace, labels, fields)
        rv = str(self.s.store.rv)
        meta: JsonDict = {"resourceVersion": rv}
        q = request.query
        if token := q.get("continue"):
            try:
                after = json.loads(base64.urlsafe_b64decode(token.encode()))
                last = (after["ns"], after["name"])
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                raise bad_request(f"continue key is not valid: {exc}") from exc
            items = [
                i
                for i in items
                if (i["metadata"].get("namespace", ""), i["metadata"]["name"]) > last
            ]
        limit = int(q.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            rest = len(items) - limit
            items = items[:limit]
            last_meta = items[-1]["metadata"]
            key = {"ns": last_meta.get("namespace", ""), "name": last_meta["name"], "rv": rv}
            meta["continue"] = base64.urlsafe_b64encode(_dump(key)).decode()
            meta["remainingItemCount"] = rest
        if mode == "table":
            body = tables.table(
                t.rt,
                items,
                self.s.clock.wall(),
                resource_version=rv,
                include_object=q.get("includeObject", "Metadata"),
            )
            body["metadata"] = meta
            return _json(body)
        if mode == "partial":
            return _json(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                    "items": [
                        {
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": i["metadata"],
                        }
                        for i in items
                    ],
                }
            )
        return _json(
            {
                "kind": t.rt.list_kind,
                "apiVersion": t.rt.api_version,
                "metadata": meta,
                "items": [_strip_type(i) for i in items],
            }
        )

    # ------------------------------------------------------------------ writes

    async def _create(self, request: web.Request, t: Target) -> web.Response:
        body = await self._body(request)
        dry = _dry_run(request.query)
        return _json(self.s.registry.create(t.rt, t.namespace or "", body, dry_run=dry), 201)

    async def _delete_collection(self, request: web.Request, t: Target) -> web.Response:
        labels, fields = self._selectors(request, t.rt)
        options = await self._body(request, optional=True) or {}
        dry = _dry_run(request.query) or _dry_run_option(options)
        deleted = []
        for obj in self.s.registry.list(t.rt, t.namespace, labels, fields):
            meta = obj["metadata"]
            with contextlib.suppress(ApiError):
                self.s.registry.delete(
                    t.rt, meta.get("namespace", ""), meta["name"], options, dry_run=dry
                )
                deleted.append(_strip_type(obj))
        return _json(
            {
                "kind": t.rt.list_kind,
                "apiVersion": t.rt.api_version,
                "metadata": {"resourceVersion": str(self.s.store.rv)},
                "items": deleted,
            }
        )

    # ------------------------------------------------------------------ watch

    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        labels, fields = self._selectors(request, t.rt)
        if t.name is not None:  # /watch/.../name: a watch of one object
            fields = (*fields, selectors.FieldRequirement("metadata.name", t.name, False))
        mode = _negotiate(request.headers.get("Accept", ""))
        bookmarks = _flag(q.get("allowWatchBookmarks"))
        send_initial = _flag(q.get("sendInitialEvents"))
        timeout = float(q.get("timeoutSeconds") or 1800)
        rv_param = q.get("resourceVersion", "")
        store = self.s.store
        key = t.rt.key
        ns = t.namespace if t.rt.namespaced else None

        def visible(obj: JsonDict | None) -> bool:
            return (
                obj is not None
                and selectors.matches(labels, obj["metadata"].get("labels"))
                and all(f.matches(obj) for f in fields)
            )

        initial: list[JsonDict] = []
        backlog: list[Event] = []
        if send_initial or rv_param in ("", "0"):
            # no resourceVersion: the current state as synthetic ADDED events, then changes
            initial = [o for o in store.objects(key, ns) if visible(o)]
            watcher, _ = store.watch(key, ns, None)
        else:
            try:
                since = int(rv_param)
            except ValueError as exc:
                raise bad_request(f"invalid resource version: {rv_param}") from exc
            try:
                watcher, backlog = store.watch(key, ns, since)
            except ApiError as err:
                # the watch cache answers a too-old resourceVersion inside the stream
                resp = web.StreamResponse(headers={"Content-Type": "application/json"})
                await resp.prepare(request)
                await resp.write(_dump({"type": "ERROR", "object": err.status()}) + b"\n")
                await resp.write_eof()
                return resp
        start_rv = store.rv
        first = True

        def render(obj: JsonDict) -> JsonDict:
            nonlocal first
            if mode != "table":
                return obj
            body = tables.table(
                t.rt,
                [obj],
                self.s.clock.wall(),
                resource_version=obj["metadata"].get("resourceVersion"),
                include_object=q.get("includeObject", "Metadata"),
                with_columns=first,
            )
            first = False
            return body

        resp = web.StreamResponse(
            headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        try:
            await resp.prepare(request)

            async def send(kind: str, obj: JsonDict) -> None:
                await resp.write(_dump({"type": kind, "object": render(obj)}) + b"\n")

            def bookmark(rv: int, initial_end: bool = False) -> JsonDict:
                meta: JsonDict = {"resourceVersion": str(rv), "creationTimestamp": None}
                if initial_end:
                    meta["annotations"] = {"k8s.io/initial-events-end": "true"}
                return {"kind": t.rt.kind, "apiVersion": t.rt.api_version, "metadata": meta}

            for obj in initial:
                await send("ADDED", obj)
            if send_initial and bookmarks:
                await resp.write(
                    _dump({"type": "BOOKMARK", "object": bookmark(start_rv, True)}) + b"\n"
                )
            for event in backlog:
                await self._send_event(send, event, visible)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            interval = max(self.s.bookmark_interval, 0.01)
            next_bookmark = loop.time() + interval
            while True:
                now = loop.time()
                if now >= deadline:
                    break
                if bookmarks and now >= next_bookmark:
                    await resp.write(
                        _dump({"type": "BOOKMARK", "object": bookmark(store.rv)}) + b"\n"
                    )
                    next_bookmark = now + interval
                wait = min(deadline, next_bookmark if bookmarks else deadline) - now
                try:
                    async with asyncio.timeout(max(wait, 0.0)):  # not wait_for: see server._run
                        event_or_none = await watcher.queue.get()
                except TimeoutError:
                    continue
                if event_or_none is None:
                    break  # dropped: the server is stopping or a fault asked for it
                await self._send_event(send, event_or_none, visible)
            await resp.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            store.unwatch(watcher)
        return resp

    @staticmethod
    async def _send_event(
        send: Callable[[str, JsonDict], Awaitable[None]],
        event: Event,
        visible: Callable[[JsonDict | None], bool],
    ) -> None:
        now, was = visible(event.obj), visible(event.prev)
        if event.type == "DELETED":
            if was:
                await send("DELETED", event.obj)
        elif now and was:
            await send("MODIFIED", event.obj)
        elif now:
            await send("ADDED", event.obj)
        elif was:
            # the object stopped matching the selector: to this watch it is gone
            await send("DELETED", event.obj)
