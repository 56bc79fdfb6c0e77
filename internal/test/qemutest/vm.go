package qemutest

import (
	"context"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/qemu"
)

// Start boots cfg and kills the VM when the test ends.
func Start(ctx context.Context, t testing.TB, cfg qemu.Config) *qemu.VM {
	t.Helper()
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("qemu accelerator: %s %s", vm.Accel().Name, vm.Accel().Why)
	t.Cleanup(func() {
		vm.Kill()
		vm.Wait()
	})
	return vm
}

// WantResult waits for the VM to end and fails the test, with the
// console's tail, unless it ended for reason want.
func WantResult(t testing.TB, vm *qemu.VM, want qemu.Reason) qemu.Result {
	t.Helper()
	res, err := vm.Wait()
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if res.Reason != want {
		t.Fatalf("result %+v, want %s; console tail:\n%s", res, want, vm.Tail(40))
	}
	return res
}
