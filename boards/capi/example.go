// fsatomic from Go through cgo: save, load, update with a Go callback,
// append, lock with a timeout, check. Usage: go run example.go DIR
package main

/*
#cgo pkg-config: fsatomic
#include <stdlib.h>
#include "fsatomic.h"
extern int goUpdate(void *ctx, void *current, size_t current_len, void *out, size_t out_cap, size_t *out_len);
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"unsafe"
)

// check turns a code into a Go error with the library's message.
func check(code C.int) error {
	if code == C.FSATOMIC_OK {
		return nil
	}
	var buf [512]C.char
	C.fsatomic_last_error_message(&buf[0], C.size_t(len(buf)))
	return fmt.Errorf("fsatomic code %d: %s", int(code), C.GoString(&buf[0]))
}

func save(dir, name string, doc []byte) error {
	d, n := C.CString(dir), C.CString(name)
	defer C.free(unsafe.Pointer(d))
	defer C.free(unsafe.Pointer(n))
	return check(C.fsatomic_save(d, n, unsafe.Pointer(&doc[0]), C.size_t(len(doc)), 0o600, C.FSATOMIC_PROTOCOL_AUTO))
}

func load(dir, name string) ([]byte, error) {
	d, n := C.CString(dir), C.CString(name)
	defer C.free(unsafe.Pointer(d))
	defer C.free(unsafe.Pointer(n))
	buf := make([]byte, 4096)
	var length C.size_t
	if err := check(C.fsatomic_load(d, n, unsafe.Pointer(&buf[0]), C.size_t(len(buf)), &length)); err != nil {
		return nil, err
	}
	return buf[:length], nil
}

//export goUpdate
func goUpdate(ctx unsafe.Pointer, current unsafe.Pointer, currentLen C.size_t, out unsafe.Pointer, outCap C.size_t, outLen *C.size_t) C.int {
	modify := cgo.Handle(*(*uintptr)(ctx)).Value().(func([]byte) []byte)
	var old []byte
	if current != nil {
		old = C.GoBytes(current, C.int(currentLen))
	}
	doc := modify(old)
	if len(doc) > int(outCap) {
		*outLen = C.size_t(len(doc))
		return C.FSATOMIC_TOO_LARGE
	}
	copy(unsafe.Slice((*byte)(out), int(outCap)), doc)
	*outLen = C.size_t(len(doc))
	return 0
}

// update runs modify on the current document under the writers' lock.
func update(dir, name string, modify func([]byte) []byte) error {
	d, n := C.CString(dir), C.CString(name)
	defer C.free(unsafe.Pointer(d))
	defer C.free(unsafe.Pointer(n))
	h := C.uintptr_t(cgo.NewHandle(modify))
	defer cgo.Handle(h).Delete()
	return check(C.fsatomic_update(d, n, 0, C.fsatomic_update_fn(unsafe.Pointer(C.goUpdate)), unsafe.Pointer(&h)))
}

func main() {
	dir := os.Args[1]
	ok := true
	step := func(what string, err error, want C.int) {
		fmt.Printf("%-34s -> %v\n", what, err)
		if (err == nil) != (want == C.FSATOMIC_OK) {
			ok = false
		}
	}
	step("save shares.json", save(dir, "shares.json", []byte(`{"shares": ["media"]}`)), C.FSATOMIC_OK)
	doc, err := load(dir, "shares.json")
	step("load shares.json", err, C.FSATOMIC_OK)
	fmt.Print(string(doc))
	for i := 0; i < 3; i++ {
		step("update hits.json (append a hit)", update(dir, "hits.json", func(old []byte) []byte {
			if old == nil {
				return []byte(`["hit"]`)
			}
			return append([]byte(`["hit",`), old[1:]...)
		}), C.FSATOMIC_OK)
	}
	doc, err = load(dir, "hits.json")
	step("load hits.json", err, C.FSATOMIC_OK)
	fmt.Print(string(doc))

	d, n := C.CString(dir), C.CString("sessions.json")
	defer C.free(unsafe.Pointer(d))
	defer C.free(unsafe.Pointer(n))
	rec := []byte(`{"session": "s1"}`)
	step("append sessions.json", check(C.fsatomic_append(d, n, unsafe.Pointer(&rec[0]), C.size_t(len(rec)), 0)), C.FSATOMIC_OK)
	var held, other *C.fsatomic_lock_handle
	step("lock sessions.json", check(C.fsatomic_lock(d, n, 1000, &held)), C.FSATOMIC_OK)
	step("lock it again, 100 ms", check(C.fsatomic_lock(d, n, 100, &other)), C.FSATOMIC_LOCK_TIMEOUT)
	step("unlock", check(C.fsatomic_unlock(held)), C.FSATOMIC_OK)
	step("check sessions.json", check(C.fsatomic_check(d, n)), C.FSATOMIC_OK)
	if !ok {
		fmt.Println("RESULT: FAIL")
		os.Exit(1)
	}
	fmt.Println("RESULT: PASS")
}
