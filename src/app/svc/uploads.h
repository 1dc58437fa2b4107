/*
 * The service "uploads" 1.0: what the upload queue (src/modules/s3_upload,
 * table upload_queue) tells other modules. Types only; the provider
 * registers a const table of this type with sl_service_register, a user
 * looks it up with sl_service_get(core, SL_UPLOADS_SERVICE, 1, 0, &ud).
 * The cleaner uses it to keep a recording that still waits for upload.
 */
#ifndef SL_APP_SVC_UPLOADS_H
#define SL_APP_SVC_UPLOADS_H

#define SL_UPLOADS_SERVICE "uploads"
#define SL_UPLOADS_MAJOR 1
#define SL_UPLOADS_MINOR 0

typedef struct sl_uploads_service {
    /**
     * 1 when the file (path as recorded, e.g. "{data_dir}/live/streams/a.flv")
     * has an upload that is not finished yet, 0 when not (or when there is
     * no queue at all), and a negative SL_E* code when the store is closed
     * or the queue cannot be read (SL_EIO): a caller that deletes must then
     * keep the file. Blocks on the store: any thread except the
     * loop's (the cleaner calls it from the thread pool). path is borrowed
     * for the call.
     */
    int (*pending)(void *ud, const char *path);
} sl_uploads_service_t;

#endif
