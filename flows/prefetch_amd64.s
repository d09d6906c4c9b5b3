#include "textflag.h"

// func prefetch(p unsafe.Pointer, n uintptr) uint64
TEXT ·prefetch(SB), NOSPLIT|NOFRAME, $0-24
	MOVQ p+0(FP), AX
	MOVQ n+8(FP), BX
	ADDQ AX, BX
	ANDQ $~63, AX
loop:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	CMPQ AX, BX
	JB   loop
	MOVQ $0, ret+16(FP)
	RET
