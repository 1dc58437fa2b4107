/*
 * The plugin loader (see loader.h): dlopen, the entry symbol, and the ABI
 * check both ways. Runs at start (and for --check-config) on the main
 * thread; it never calls into the plugin beyond its entry function.
 */
#include "app/loader.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "sluice/errors.h"

/* The smallest descriptor size a plugin of ABI 1.minor may declare. */
static size_t min_size_for_minor(int minor)
{
    /* 1.2 and 1.3 added no descriptor field (event types, a host call): 1.1's size holds. */
    return minor <= 0 ? SL_PLUGIN_SIZE_1_0 : SL_PLUGIN_SIZE_1_1;
}

/*
 * Checks p (borrowed) against this host: same major, minor not newer, a
 * sane size, the mandatory fields. 0 or SL_EINVAL with why set.
 */
int sl_plugin_abi_check(const sl_plugin_t *p, char *why, size_t why_cap)
{
    if (!p) {
        snprintf(why, why_cap, "the entry point returned no descriptor");
        return SL_EINVAL;
    }
    if (p->abi_major != SL_ABI_MAJOR) {
        snprintf(why, why_cap,
                 "plugin ABI %d.%d has another major than the host's ABI %d.%d: rebuild it "
                 "against this sluice's headers",
                 p->abi_major, p->abi_minor, SL_ABI_MAJOR, SL_ABI_MINOR);
        return SL_EINVAL;
    }
    if (p->abi_minor < 0 || p->abi_minor > SL_ABI_MINOR) {
        snprintf(why, why_cap,
                 "plugin ABI %d.%d is newer than the host's ABI %d.%d: upgrade sluice or build "
                 "the plugin against these headers",
                 p->abi_major, p->abi_minor, SL_ABI_MAJOR, SL_ABI_MINOR);
        return SL_EINVAL;
    }
    if (p->size < min_size_for_minor(p->abi_minor) || p->size > sizeof(sl_plugin_t)) {
        snprintf(why, why_cap,
                 "plugin ABI %d.%d declares a descriptor of %zu bytes; ABI %d.%d needs %zu to "
                 "%zu (host ABI %d.%d)",
                 p->abi_major, p->abi_minor, p->size, p->abi_major, p->abi_minor,
                 min_size_for_minor(p->abi_minor), sizeof(sl_plugin_t), SL_ABI_MAJOR,
                 SL_ABI_MINOR);
        return SL_EINVAL;
    }
    const char *missing = !p->name || !p->name[0] ? "name"
                          : !p->init              ? "init"
                          : !p->destroy           ? "destroy"
                                                  : NULL;
    if (missing) {
        snprintf(why, why_cap, "plugin ABI %d.%d: the mandatory field '%s' is not set (host ABI %d.%d)",
                 p->abi_major, p->abi_minor, missing, SL_ABI_MAJOR, SL_ABI_MINOR);
        return SL_EINVAL;
    }
    return 0;
}

/*
 * dlopen(RTLD_NOW | RTLD_LOCAL), entry symbol, ABI check, copy of the
 * descriptor up to its declared size. See loader.h.
 */
int sl_plugin_lib_open(const char *path, sl_plugin_lib_t *lib, char *why, size_t why_cap)
{
    char reason[512];
    memset(lib, 0, sizeof *lib);
    dlerror();
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, why_cap, "plugin %s: cannot load: %s (host ABI %d.%d)", path,
                 e ? e : "unknown error", SL_ABI_MAJOR, SL_ABI_MINOR);
        return SL_ENOTFOUND;
    }
    dlerror();
    void *sym = dlsym(h, SL_PLUGIN_ENTRY_SYMBOL);
    if (!sym) {
        snprintf(why, why_cap,
                 "plugin %s: refused: it does not export the symbol %s (is it a sluice plugin "
                 "built with SL_PLUGIN_INIT?) (host ABI %d.%d)",
                 path, SL_PLUGIN_ENTRY_SYMBOL, SL_ABI_MAJOR, SL_ABI_MINOR);
        dlclose(h);
        return SL_ENOTFOUND;
    }
    sl_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* ISO C: no direct object-to-function cast */
    const sl_plugin_t *p = entry();
    if (sl_plugin_abi_check(p, reason, sizeof reason)) {
        snprintf(why, why_cap, "plugin %s: refused: %s", path, reason);
        dlclose(h);
        return SL_EINVAL;
    }
    memcpy(&lib->desc, p, p->size);
    lib->handle = h;
    return 0;
}

/* A built-in's descriptor through the same check; see loader.h. */
int sl_plugin_lib_builtin(const sl_plugin_t *desc, sl_plugin_lib_t *lib, char *why,
                          size_t why_cap)
{
    char reason[512];
    memset(lib, 0, sizeof *lib);
    if (sl_plugin_abi_check(desc, reason, sizeof reason)) {
        snprintf(why, why_cap, "built-in module %s: refused: %s",
                 desc && desc->name ? desc->name : "(unnamed)", reason);
        return SL_EINVAL;
    }
    memcpy(&lib->desc, desc, desc->size);
    return 0;
}

/* dlclose; see loader.h. */
void sl_plugin_lib_close(sl_plugin_lib_t *lib)
{
    if (lib && lib->handle) {
        dlclose(lib->handle);
        lib->handle = NULL;
    }
}
