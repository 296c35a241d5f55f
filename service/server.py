"""The service process: wiring of store, registry, engine, object store and gRPC server.

`Service` is what `python -m service` runs and what tests start on port 0.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent import futures
from datetime import datetime

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.api import datasource_servicer, notification_servicer
from service.api.identity_servicer import SERVICE_NAME as IDENTITY_SERVICE
from service.api.identity_servicer import IdentityServicer
from service.api.interceptors import (
    AuthInterceptor,
    LogContextInterceptor,
    MetricsInterceptor,
    UnreadableRequestInterceptor,
)
from service.api.task_servicer import TaskServicer
from service.api.upload_servicer import UploadServicer
from service.app.catalog import Catalog
from service.app.generation import GenerateHandler
from service.app.imports import ImportHandler
from service.app.kinds import KindHandler
from service.app.outbox import Outbox
from service.app.runs import Exports
from service.app.tasks import TaskManager
from service.app.uploads import Uploads
from service.auth import Authenticator
from service.config import Config, ConfigError, TlsConfig, is_loopback
from service.datasources import DatasourceRegistry
from service.demo import ensure_demo_database
from service.domain.model import TaskKind
from service.load.privileges import log_audit
from service.metrics import Metrics
from service.scheduler import Scheduler, utc_now
from service.startup import open_object_store, open_task_store, prepare_data_dir
from service.storage.base import ObjectStore
from service.storage.local import LocalStore
from woxqaq.v1 import (
    identity_service_pb2_grpc,
    task_service_pb2,
    task_service_pb2_grpc,
    upload_service_pb2,
    upload_service_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    task_service_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
    upload_service_pb2.DESCRIPTOR.services_by_name["UploadService"].full_name,
    notification_servicer.SERVICE_NAME,
    datasource_servicer.SERVICE_NAME,
    IDENTITY_SERVICE,
)


def check_tls_files(tls: TlsConfig | None) -> None:
    for key, path in (tls.files() if tls else {}).items():
        if not path.is_file():
            raise ConfigError(f"config key server.tls.{key}: file {path} does not exist")


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials:
    """TLS for the gRPC port; with a client CA, every client shows a certificate it signed."""
    ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


class Service:
    """Everything one service process runs. start() → port; stop() drains and closes."""

    def __init__(
        self,
        config: Config,
        *,
        listen: str | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.config = config
        self.listen = listen or config.server.listen
        check_tls_files(config.server.tls)
        if not (
            config.authenticates or config.server.allow_unauthenticated or is_loopback(self.listen)
        ):
            raise ConfigError(
                f"server.listen {self.listen} is reachable beyond this machine and no caller "
                "can be authenticated: configure auth.principals, auth.jwt, server.token or "
                "server.tls.client_ca_file, or set server.allow_unauthenticated = true"
            )
        self.instance_id = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        prepare_data_dir(config)
        if config.embedded:
            ensure_demo_database(config.demo_database_path)

        self.metrics = Metrics()
        # Both stores are checked before anything else starts; a failure is a ConfigError.
        self.store = open_task_store(config)
        try:
            self.objects: ObjectStore = open_object_store(config)
        except Exception:
            self.store.close()
            raise
        self.metrics.watch_backlog(self.store)
        self.registry = DatasourceRegistry(config)
        # Kinds beyond export: their submit checks, pre-check and run (service/app/).
        kinds: dict[TaskKind, KindHandler] = {
            TaskKind.DATA_IMPORT: ImportHandler(config, self.store, self.registry, self.objects),
            TaskKind.DATA_GENERATE: GenerateHandler(
                config, self.registry, self.store, self.objects
            ),
        }
        self.exports = Exports(
            config,
            self.store,
            self.registry,
            self.objects,
            instance_id=self.instance_id,
            stale_after_s=config.export.stale_run_s,
            heartbeat_s=config.export.stale_run_s / 6,  # several beats fit in the stale limit
            kinds=kinds,
            metrics=self.metrics,
        )
        self.tasks = TaskManager(
            config,
            self.store,
            self.registry,
            instance_id=self.instance_id,
            launcher=self.exports,
            kinds=kinds,
            metrics=self.metrics,
        )
        self.scheduler = Scheduler(config, self.store, self.tasks, clock=clock)
        self.health = health.HealthServicer()
        self.port = 0
        self.metrics_port = 0  # bound once started, when metrics.listen is set
        self._server: grpc.Server | None = None
        self._stopped = threading.Event()

    def _build_server(self) -> grpc.Server:
        limit = self.config.server.max_message_bytes
        # Outermost first: metrics count every refusal, the log context covers the rest.
        interceptors: list[grpc.ServerInterceptor] = [
            MetricsInterceptor(self.metrics),
            LogContextInterceptor(),
            AuthInterceptor(Authenticator(self.config)),
            UnreadableRequestInterceptor(),
        ]
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="grpc"),
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=256,
        )
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(
            TaskServicer(self.tasks, self.exports), server
        )
        upload_service_pb2_grpc.add_UploadServiceServicer_to_server(
            UploadServicer(Uploads(self.objects, link_ttl_s=self.config.storage.link_ttl_s)), server
        )
        descriptions = {name: ds.description for name, ds in self.config.datasources.items()}
        outbox = Outbox(self.store, self.registry, descriptions=descriptions, metrics=self.metrics)
        notification_servicer.register(server, outbox)
        datasource_servicer.register(server, Catalog(self.config, self.registry))
        identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        return server

    def start(self) -> int:
        if isinstance(self.objects, LocalStore):
            self.objects.serve()  # the signed-link download endpoint
        self.exports.start()
        # Users that may do more than they need are told of at start; a slow or
        # unreachable datasource must not hold the service up.
        threading.Thread(target=self._audit, name="privilege-audit", daemon=True).start()
        self._server = self._build_server()
        tls = self.config.server.tls
        self.port = (
            self._server.add_secure_port(self.listen, server_credentials(tls))
            if tls
            else self._server.add_insecure_port(self.listen)
        )
        if self.port == 0:
            raise OSError(f"cannot listen on {self.listen}: the address is taken or invalid")
        self._server.start()
        if self.config.scheduler.enabled:
            self.scheduler.start()
        if self.config.metrics.listen:
            self.metrics_port = self.metrics.serve(self.config.metrics.listen)
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("woxqaq service listening on %s (port %d)", self.listen, self.port)
        # A slow or unreachable datasource must not delay serving: the audit runs beside it
        # (and again at a pre-check that finds no audit yet).
        threading.Thread(target=self.registry.audit_all, name="reader-audit", daemon=True).start()
        return self.port

    def _audit(self) -> None:
        try:
            log_audit(self.registry)
        except Exception:
            log.exception("the datasource users' privileges could not be checked")

    def stop(self, grace_s: float | None = None) -> None:
        """Stop taking calls; let in-flight calls and exports finish within the grace time."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.config.server.shutdown_grace_s if grace_s is None else grace_s
        self.health.enter_graceful_shutdown()
        self.scheduler.stop()  # no new runs while the running ones finish
        if self._server is not None:
            self._server.stop(grace).wait()
        self.exports.stop(grace)
        self.metrics.close()
        self.objects.close()
        self.registry.dispose()
        self.store.close()
        log.info("woxqaq service stopped")

    def wait(self) -> None:
        if self._server is not None:
            self._server.wait_for_termination()
