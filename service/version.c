#include "version.h"

#include "revision.h" /* generated at build time by cmake/revision.cmake */

const char svc_version[] = NDB_VERSION;
const char svc_revision[] = NDB_REVISION;
