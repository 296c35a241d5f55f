"""woxqaq.v1.DatasourceService: the datasources and tables the calling user may export from."""

from __future__ import annotations

import grpc

from service.api.errors import maps_errors
from service.api.task_servicer import acting_user
from service.app.catalog import Catalog, DatasourceView
from woxqaq.v1 import datasource_service_pb2 as dpb
from woxqaq.v1 import datasource_service_pb2_grpc as dpb_grpc

SERVICE_NAME = dpb.DESCRIPTOR.services_by_name["DatasourceService"].full_name


def _datasource_to_pb(view: DatasourceView) -> dpb.DatasourceInfo:
    info = dpb.DatasourceInfo(
        name=view.name,
        dialect=view.dialect,
        approvers=view.approvers,
        approval_channel=view.approval_channel,
        required_approvals=view.required_approvals,
        description=view.description,
        default_database=view.default_database,
        audit_findings=view.audit_findings,
    )
    if view.reachability is not None:
        info.reachable_checked = True
        info.reachable = view.reachability.reachable
        info.unreachable_reason = view.reachability.reason
    return info


class DatasourceServicer(dpb_grpc.DatasourceServiceServicer):
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    @maps_errors
    def ListDatasources(
        self, request: dpb.DatasourceQuery, context: grpc.ServicerContext
    ) -> dpb.DatasourceList:
        views = self.catalog.datasources(acting_user(), check_reachable=request.check_reachable)
        return dpb.DatasourceList(datasources=[_datasource_to_pb(v) for v in views])

    @maps_errors
    def ListTables(self, request: dpb.TableQuery, context: grpc.ServicerContext) -> dpb.TableList:
        database, tables = self.catalog.tables(acting_user(), request.dsn, request.database)
        return dpb.TableList(
            database=database,
            tables=[dpb.TableInfo(name=t.name, columns=t.columns) for t in tables],
        )


def register(server: grpc.Server, catalog: Catalog) -> None:
    """Add the DatasourceService to `server` (one call in the service's server builder)."""
    dpb_grpc.add_DatasourceServiceServicer_to_server(DatasourceServicer(catalog), server)
