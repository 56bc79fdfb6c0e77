package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// EnvPowerCuts sets how many random cuts TestPowerCuts makes (make
// powercut); unset, it cuts once at each step.
const EnvPowerCuts = "BULKHEAD_POWERCUTS"

// cutPoint is where in an update the power is cut: when the console shows
// the line, after a delay.
type cutPoint struct {
	step, line string
}

// cutPoints are the steps of an update, in order.
var cutPoints = []cutPoint{
	{"during the slot write", "update: step slot ("},
	{"after the slot write", "update: step slot-done"},
	{"during the ESP copy", "update: step esp ("},
	{"before the entry rename", "update: step commit ("},
	{"after the entry rename", "update: step commit-done"},
	{"during the first boot of the new version", "boot: assessing bulkhead-%s+2-1.conf"},
	{"before the bless", "service hello healthy"}, // counted from the new version's boot
}

type cutResult struct {
	step    string
	offset  time.Duration
	booted  string
	served  bool
	varOK   bool
	elapsed time.Duration
}

var dataBootRE = regexp.MustCompile(`data: boot (\d+) on this data partition`)

// TestPowerCuts cuts the power (kills qemu) at each step of an update,
// then cold-boots the disk: the host must come up on the old or the new
// version and serve, and /var must be the same file system (its boot
// counter goes on). Trials chain: each uploads the next version.
func TestPowerCuts(t *testing.T) {
	trials := len(cutPoints)
	random := false
	if s := os.Getenv(EnvPowerCuts); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("$%s=%q: want a positive number", EnvPowerCuts, s)
		}
		trials, random = n, true
	}
	u := newUpdateHost(t)
	u.boot()
	lastBoot := dataBoot(t, u.vm.Console())
	running := "1.0.0"
	var results []cutResult
	for i := range trials {
		cp := cutPoints[i%len(cutPoints)]
		var offset time.Duration
		if random {
			cp = cutPoints[rand.IntN(len(cutPoints))]
			offset = time.Duration(rand.IntN(2000)) * time.Millisecond
		}
		version := fmt.Sprintf("%d.0.0", i+2)
		bundle := u.bundle(u.spec(version, nil, ""), "release")
		r := u.cutAt(cp, offset, version, bundle)
		booted, served, boot := u.afterCut(t)
		r.booted, r.served = booted, served
		r.varOK = boot == lastBoot+1 && !strings.Contains(u.vm.Console(), "data: created file system")
		lastBoot = boot
		results = append(results, r)
		if (booted != running && booted != version) || !served || !r.varOK {
			printCuts(t, results)
			t.Fatalf("cut %s: booted %q (old %s, new %s), served %v, /var intact %v", cp.step, booted, running, version, served, r.varOK)
		}
		running = booted
	}
	printCuts(t, results)
}

// cutAt uploads the bundle (reboot on commit), kills qemu when the cut
// point's line appears (plus offset), and says when.
func (u *updateHost) cutAt(cp cutPoint, offset time.Duration, version, bundle string) cutResult {
	u.t.Helper()
	line := cp.line
	if strings.Contains(line, "%s") {
		line = fmt.Sprintf(line, version)
	}
	done := make(chan error, 1)
	begin := time.Now()
	go func() {
		_, err := execHost(u, "update", "--reboot", bundle)
		done <- err
	}()
	if strings.HasPrefix(cp.line, "service hello healthy") {
		waitFor(u.t, u.vm, "boot: assessing bulkhead-"+version, 10*time.Minute)
	}
	waitFor(u.t, u.vm, line, 10*time.Minute)
	time.Sleep(offset)
	u.vm.Kill()
	u.vm.Wait()
	<-done // the upload's answer may be lost with the power
	return cutResult{step: cp.step, offset: offset, elapsed: time.Since(begin)}
}

// afterCut cold-boots the disk and returns the version that serves, and
// the data partition's boot number.
func (u *updateHost) afterCut(t *testing.T) (string, bool, int) {
	t.Helper()
	u.coldBoot()
	waitFor(t, u.vm, "service hello healthy", 10*time.Minute)
	boot := dataBoot(t, u.vm.Console())
	st := u.status()
	body := get(t, u.ports[0], time.Minute)
	// Let the boot assessment finish so the next trial starts from a
	// blessed entry.
	for _, e := range st.Entries {
		if e.Running && !e.Blessed {
			waitFor(t, u.vm, "boot: blessed entry", 2*time.Minute)
		}
	}
	return st.Version, strings.Contains(body, "hello from minimal"), boot
}

func dataBoot(t *testing.T, console string) int {
	t.Helper()
	m := dataBootRE.FindAllStringSubmatch(console, -1)
	if len(m) == 0 {
		t.Fatalf("no data boot line on the console")
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func execHost(u *updateHost, args ...string) (string, error) {
	out, err := execCommand(bulkhead, u.hostArgs(args...)...)
	return out, err
}

func printCuts(t *testing.T, results []cutResult) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tSTEP\tOFFSET\tBOOTED\tSERVED\t/VAR INTACT")
	for i, r := range results {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%v\t%v\n", i+1, r.step, r.offset, r.booted, r.served, r.varOK)
	}
	tw.Flush()
	t.Logf("power cuts:\n%s", b.String())
	if p := os.Getenv("BULKHEAD_POWERCUT_TABLE"); p != "" {
		os.WriteFile(p, []byte(b.String()), 0o644)
	}
}
