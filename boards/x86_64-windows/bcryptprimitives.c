/*
 * bcryptprimitives.dll for Wine 8: Rust's std (1.78 and later) imports
 * ProcessPrng from bcryptprimitives.dll for its random keys (HashMap,
 * temporary names), and Wine 8 has no such DLL, so every Rust program fails
 * to load (status c0000135). This shim exports ProcessPrng over advapi32's
 * RtlGenRandom (SystemFunction036), which Wine has. For tests under Wine
 * only; Windows 10 and later ship the real DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
