# The REST shim: JSON⇄protobuf transcoding, the HTTP server, /metrics, and the
# route table + OpenAPI document generated at build time from the protos'
# google.api.http annotations (service/gen/rest_gen.c over ${NDB_DESCRIPTOR_SET}).
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)

# A host tool, run once per build.
add_executable(rest_gen ${CMAKE_CURRENT_SOURCE_DIR}/gen/rest_gen.c)
target_link_libraries(rest_gen PRIVATE ndb_proto PkgConfig::JANSSON)

set(rest_gen_c ${CMAKE_CURRENT_BINARY_DIR}/rest_routes_gen.c)
set(rest_openapi ${CMAKE_CURRENT_BINARY_DIR}/openapi.json)
add_custom_command(
  OUTPUT ${rest_gen_c} ${rest_openapi}
  COMMAND rest_gen ${NDB_DESCRIPTOR_SET} ${rest_gen_c} ${rest_openapi} ${PROJECT_VERSION}
          --open nexadb.v1.AdminService.Status
          --event-stream nexadb.v1.DocumentService.Watch
          --path-pattern "collection=^[A-Za-z0-9_-]{1,64}$"
  DEPENDS rest_gen ${NDB_DESCRIPTOR_SET} ndb_descriptor_set
  COMMENT "REST routes and openapi.json from google.api.http annotations"
  VERBATIM)

target_sources(ndb_service PRIVATE
  ${CMAKE_CURRENT_SOURCE_DIR}/json_pb.c
  ${CMAKE_CURRENT_SOURCE_DIR}/metrics.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rest.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rest_sink.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rest_sse.c
  ${CMAKE_CURRENT_SOURCE_DIR}/rest_tls.c
  ${CMAKE_CURRENT_SOURCE_DIR}/status_details.c
  ${rest_gen_c})
target_link_libraries(ndb_service PUBLIC PkgConfig::MHD PkgConfig::JANSSON)
