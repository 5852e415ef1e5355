/*
 * version.h — what this server binary is: the release (CMake's PROJECT_VERSION)
 * and the source revision it was built from (git commit, or the source
 * tarball's REVISION file). Kept apart so a new commit recompiles one file.
 */
#ifndef SVC_VERSION_H
#define SVC_VERSION_H

extern const char svc_version[];  /* "0.1.0" */
extern const char svc_revision[]; /* "5aad406e1c2b", "5aad406e1c2b-dirty" or "unknown" */

#endif /* SVC_VERSION_H */
