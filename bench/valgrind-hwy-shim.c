/*
 * bench/valgrind-hwy-shim.c: lets bench/instructions run sluice under
 * valgrind on machines whose CPU does not advertise RDTSCP.
 *
 * sluice links libavcodec, which links libjxl, which links libhwy (Highway).
 * libhwy 1.0.x calls hwy::platform::TimerResolution() from a static
 * initialiser when it is loaded, and that function executes RDTSCP
 * unconditionally. Valgrind (3.19) decodes RDTSCP only when the host's CPUID
 * says the CPU has it; on virtual machines that hide the flag (while the
 * instruction still works natively) valgrind raises SIGILL before main().
 * The initialiser calls the function through the PLT, so this one-line
 * definition, put first with LD_PRELOAD, replaces it. sluice never uses
 * Highway's timers (nor JPEG XL), so the value returned does not matter.
 * Built by bench/instructions with `cc -shared -fPIC`; nothing else uses it.
 */
double _ZN3hwy8platform15TimerResolutionEv(void);

/* hwy::platform::TimerResolution(): the timer's resolution in ticks; a
 * constant here, computed without RDTSCP. */
double _ZN3hwy8platform15TimerResolutionEv(void)
{
    return 1.0;
}
