package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The gateway's memory does not grow with its audit log: pages the writer has
// written leave the process's resident set, though the file keeps them.
func TestWrittenPagesLeaveMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/self/smaps, which only Linux has")
	}
	l, path := MustOpen(t, testOptions(t))
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := range 300 {
				r := sampleRecord(w*300 + i)
				// About 4 KB a record: 12,000 withheld paths' worth of file.
				for j := range 100 {
					r.Withheld = append(r.Withheld, fmt.Sprintf("documents[].%032d", j))
				}
				if _, err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 16<<20 {
		t.Fatalf("the log is %d bytes: too small to show anything", st.Size())
	}
	if rss := mappedRSS(t, path); rss > releaseEvery+releaseTail+(1<<20) {
		t.Errorf("after writing %d MB the log's mapping holds %d MB resident", st.Size()>>20, rss>>20)
	}
}

// mappedRSS is how much of the mappings of file is resident in this process.
func mappedRSS(t *testing.T, file string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rss int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":"):
			in = len(fields) >= 6 && fields[5] == file
		case in && len(fields) == 3 && fields[0] == "Rss:":
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			rss += kb << 10
		}
	}
	return rss
}
