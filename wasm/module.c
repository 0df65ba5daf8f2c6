/* The sparsekern.wasm module: libsparsekern's exported functions (sparsekern.h) are the
 * module's exports; this file only makes sure the allocator the host needs is linked. */
#include <stdlib.h>

#include "sparsekern.h"

__attribute__((visibility("default"))) int sk_wasm_abi_version(void) { return 1; }
