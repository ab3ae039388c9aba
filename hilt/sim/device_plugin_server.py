"""A simulated node's NVIDIA device plugin, kubelet pod-resources endpoint and GPU Feature Discovery.

Started at boot inside the node's namespaces (:mod:`hilt.sim.nodeinit`, before sshd), from the view the image
wrote (:mod:`hilt.sim.k8s_view`): it writes GFD's feature file (atomically, as GFD does) and serves real gRPC on
the kubelet's unix sockets, ``v1beta1.DevicePlugin`` (GetDevicePluginOptions, ListAndWatch,
GetPreferredAllocation, Allocate, PreStartContainer) and ``v1.PodResourcesLister`` (List,
GetAllocatableResources), with hilt's own wire definitions (:mod:`hilt.fabric.kubelet_api`). A power off kills it with
the node; its sockets stay on the node's disk, stale, until the next boot's server replaces them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from hilt.errors import ParseError
from hilt.fabric import kubelet_api as wire
from hilt.fabric.gpuquery import node_clique, parse_nvidia_smi_q

_WATCH_S = 3600.0  # a ListAndWatch stream stays open this long at most (the kubelet keeps it for the plugin's life)


def prefer(available: Sequence[str], must_include: Sequence[str], size: int, groups: list[list[str]],
           policy: str) -> list[str]:
    """A preferred allocation: ``must_include`` first, then by NVLink group (``groups``: whole groups, the required
    one first) or ``cross-group`` (one GPU of each group in turn: an allocator that does not know the groups)."""
    avail = [d for d in available if d]
    chosen = [d for d in dict.fromkeys(must_include) if d in avail][:size]
    if policy == "groups":
        first = must_include[0] if must_include else None
        order = sorted(groups, key=lambda g: (first not in g, -len(set(g) & set(avail))))
        candidates = [d for g in order for d in g]
    else:
        first_group = next((g for g in groups if must_include and must_include[0] in g), None)
        rotation = ([first_group] if first_group else []) + [g for g in groups if g is not first_group]
        candidates = [g[k] for k in range(max((len(g) for g in groups), default=0)) for g in rotation if k < len(g)]
    for device in candidates + avail:
        if len(chosen) >= size:
            break
        if device in avail and device not in chosen:
            chosen.append(device)
    return chosen


class KubeletView:
    """The answers of one node, from its kubelet.json."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.stop = threading.Event()

    def device_plugin(self) -> grpc.GenericRpcHandler:
        api = wire.deviceplugin
        spec = self.spec

        def options(request: Any, context: grpc.ServicerContext) -> Any:
            return api.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=True)

        def list_and_watch(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            yield api.ListAndWatchResponse(devices=[
                api.Device(ID=d["id"], health=d["health"],
                           topology=api.TopologyInfo(nodes=[api.NUMANode(ID=n) for n in d["numa"]]))
                for d in spec["devices"]])
            done = threading.Event()
            context.add_callback(done.set)
            deadline = time.monotonic() + _WATCH_S
            while not done.wait(0.5) and not self.stop.is_set() and time.monotonic() < deadline:
                pass

        def preferred(request: Any, context: grpc.ServicerContext) -> Any:
            answers = [api.ContainerPreferredAllocationResponse(deviceIDs=prefer(
                list(r.available_deviceIDs), list(r.must_include_deviceIDs), r.allocation_size, spec["groups"],
                spec["preferred"])) for r in request.container_requests]
            return api.PreferredAllocationResponse(container_responses=answers)

        def allocate(request: Any, context: grpc.ServicerContext) -> Any:
            known = {d["id"] for d in spec["devices"]}
            responses = []
            for r in request.container_requests:
                unknown = [d for d in r.devicesIDs if d not in known]
                if unknown:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown device(s) {unknown}")
                responses.append(api.ContainerAllocateResponse(envs={"NVIDIA_VISIBLE_DEVICES": ",".join(r.devicesIDs)}))
            return api.AllocateResponse(container_responses=responses)

        def pre_start(request: Any, context: grpc.ServicerContext) -> Any:
            return api.PreStartContainerResponse()

        return _handler(wire.DEVICE_PLUGIN_SERVICE, api, wire.DEVICE_PLUGIN_METHODS, {
            "GetDevicePluginOptions": options, "ListAndWatch": list_and_watch, "GetPreferredAllocation": preferred,
            "Allocate": allocate, "PreStartContainer": pre_start})

    def pod_resources(self) -> grpc.GenericRpcHandler:
        api = wire.podresources
        spec = self.spec

        def allocatable(request: Any, context: grpc.ServicerContext) -> Any:
            devices = [api.ContainerDevices(resource_name=spec["resource"], device_ids=[d["id"]],
                                            topology=api.TopologyInfo(nodes=[api.NUMANode(ID=n) for n in d["numa"]]))
                       for d in spec["devices"] if d["health"] == "Healthy"]  # the kubelet hands out healthy ones
            return api.AllocatableResourcesResponse(devices=devices)

        def list_pods(request: Any, context: grpc.ServicerContext) -> Any:
            return api.ListPodResourcesResponse()  # no pods on a node under validation

        return _handler(wire.POD_RESOURCES_SERVICE, api, wire.POD_RESOURCES_METHODS,
                        {"GetAllocatableResources": allocatable, "List": list_pods})


def _handler(service: str, api: Any, methods: dict[str, tuple[str, str, bool]], impl: dict[str, Any]
             ) -> grpc.GenericRpcHandler:
    handlers = {}
    for method, (request, response, streaming) in methods.items():
        make = grpc.unary_stream_rpc_method_handler if streaming else grpc.unary_unary_rpc_method_handler
        handlers[method] = make(impl[method], request_deserializer=getattr(api, request).FromString,
                                response_serializer=getattr(api, response).SerializeToString)
    return grpc.method_handlers_generic_handler(service, handlers)


def gfd_labels(spec: dict[str, Any], smi_query: str) -> dict[str, str]:
    """GFD's labels: the view's, with memory and fabric clique from the node's ``nvidia-smi -q`` (whatever view
    prints it), as GFD takes them from NVML; ``gfd_clique: wrong`` labels another clique than the GPUs show."""
    labels = dict(spec["gfd_labels"])
    try:
        gpus = parse_nvidia_smi_q(smi_query)
    except ParseError:
        gpus = []
    if gpus and gpus[0].memory_total_mib is not None:
        labels["nvidia.com/gpu.memory"] = str(gpus[0].memory_total_mib)
    clique = node_clique(gpus)
    if spec.get("gfd_clique") == "wrong":  # a stale label from another partition (or where the GPUs join none)
        cluster, _, clique_id = (clique or "").rpartition(".")
        other = cluster or str(uuid.uuid5(uuid.NAMESPACE_URL, "hilt-sim/fabric/other"))
        clique = f"{other}.{int(clique_id) - 1 if clique_id.isdigit() else 32765}"
    if clique:
        labels["nvidia.com/gpu.clique"] = clique
    return labels


def node_smi_query() -> str:
    """``nvidia-smi -q`` as the node prints it ('' where it cannot)."""
    tool = "/usr/local/bin/nvidia-smi" if os.path.exists("/usr/local/bin/nvidia-smi") else shutil.which("nvidia-smi")
    if not tool:
        return ""
    try:
        return subprocess.run([tool, "-q"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def write_gfd_file(path: Path, labels: dict[str, str]) -> None:
    """GFD's output file, written as GFD writes it: whole, by rename (with its timestamp label)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**labels, "nvidia.com/gfd.timestamp": str(int(time.time()))}
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text("".join(f"{k}={v}\n" for k, v in sorted(body.items())))
    tmp.replace(path)


def serve(spec: dict[str, Any]) -> tuple[KubeletView, list[grpc.Server]]:
    """Start both servers on their sockets (replacing stale ones); returns them running."""
    view = KubeletView(spec)
    servers = []
    for path, handler in ((spec["device_plugin_socket"], view.device_plugin()),
                          (spec["pod_resources_socket"], view.pod_resources())):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).unlink(missing_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="kubelet-view"))
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"unix:{path}")
        server.start()
        servers.append(server)
    return view, servers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hilt.sim.device_plugin_server")
    parser.add_argument("--view", required=True, type=Path, help="kubelet.json written by hilt.sim.k8s_view")
    args = parser.parse_args(argv)
    spec = json.loads(args.view.read_text())
    write_gfd_file(Path(spec["gfd_features_file"]), gfd_labels(spec, node_smi_query()))
    view, servers = serve(spec)
    print(f"device plugin on {spec['device_plugin_socket']}, pod-resources on {spec['pod_resources_socket']} "
          f"(pid {os.getpid()})", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    while not stopped.wait(1.0):
        pass
    view.stop.set()
    for server in servers:
        server.stop(1)


if __name__ == "__main__":
    main()
