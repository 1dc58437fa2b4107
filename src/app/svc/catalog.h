/*
 * The service "catalog" 1.0: what the recordings catalog (src/modules/
 * recorder, table recordings) lets other modules change. Types only; the
 * recorder registers a const table of this type, users look it up with
 * sl_service_get(core, SL_CATALOG_SERVICE, 1, 0, &ud). The cleaner marks
 * what it deleted; the uploader records where an upload stands. Nobody
 * but the recorder writes the recordings table.
 */
#ifndef SL_APP_SVC_CATALOG_H
#define SL_APP_SVC_CATALOG_H

#define SL_CATALOG_SERVICE "catalog"
#define SL_CATALOG_MAJOR 1
#define SL_CATALOG_MINOR 0

typedef struct sl_catalog_service {
    /**
     * Marks the recording of file (path as recorded) deleted. Blocks on the
     * store until written: any thread except the loop's (the cleaner calls
     * it from the thread pool after unlinking). 0, SL_EIO (the catalog
     * could not be written, logged) or SL_ECLOSED. path is borrowed.
     */
    int (*mark_deleted)(void *ud, const char *path);
    /**
     * Records the upload state ("pending", "done") of the recording of file.
     * Loop thread; does not block: the update is queued on the store, in
     * order with the catalog's other writes. 0, SL_ENOMEM or SL_ECLOSED.
     * Both strings are copied.
     */
    int (*set_upload_state)(void *ud, const char *path, const char *state);
} sl_catalog_service_t;

#endif
