package proxy

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/consentgate/consentgate/configs"
	"github.com/consentgate/consentgate/minimise"
)

// shapeLimits bound the structure of a JSON request body (configs.BodyLimits).
type shapeLimits struct {
	depth, keys, pathBytes, arrayLen int
}

func compileLimits(l configs.BodyLimits) shapeLimits {
	return shapeLimits{depth: l.Depth, keys: l.Keys, pathBytes: l.PathBytes, arrayLen: l.ArrayLength}
}

// checkShape walks a valid JSON document once and refuses one nested deeper,
// with more object keys, a longer field path or a longer array than allowed.
// Everything after it (the field list, minimisation) walks the tree, so these
// bounds are what keep their cost linear in the body's size.
func checkShape(b []byte, l shapeLimits) error {
	type level struct {
		object bool
		items  int // array elements so far
		path   int // bytes of the path down to this container
		key    int // bytes of the key being read (objects)
	}
	var stack []level
	keys, expectKey := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			end := minimise.SkipString(b, i)
			if expectKey {
				top := &stack[len(stack)-1]
				if keys++; keys > l.keys {
					return fmt.Errorf("more than %d object keys", l.keys)
				}
				if top.key = end - i - 1; top.path+top.key > l.pathBytes {
					return fmt.Errorf("a field path longer than %d bytes", l.pathBytes)
				}
				expectKey = false
			}
			i = end - 1
		case '{', '[':
			path := 0
			if n := len(stack); n > 0 {
				path = stack[n-1].path + stack[n-1].key + 2
			}
			if stack = append(stack, level{object: c == '{', path: path}); len(stack) > l.depth {
				return fmt.Errorf("nested deeper than %d", l.depth)
			}
			expectKey = c == '{'
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case ',':
			top := &stack[len(stack)-1]
			if top.object {
				expectKey = true
			} else if top.items++; top.items >= l.arrayLen {
				return fmt.Errorf("an array longer than %d", l.arrayLen)
			}
		}
	}
	return nil
}

// parseSlots bound how many request bodies are read and parsed at once: in all,
// and per app, so that one app sending large or complex bodies waits for its
// own slots while other apps' calls go on.
type parseSlots struct {
	all  chan struct{}
	mu   sync.Mutex
	apps map[string]chan struct{}
	each int
	wait time.Duration
}

func newParseSlots() *parseSlots {
	n := runtime.GOMAXPROCS(0)
	return &parseSlots{all: make(chan struct{}, 2*n), apps: map[string]chan struct{}{}, each: max(1, n), wait: parseWait}
}

// acquire waits for a slot of app's and one of all, until ctx ends or the
// wait has passed; release gives them back.
func (p *parseSlots) acquire(ctx context.Context, app string) (release func(), ok bool) {
	p.mu.Lock()
	mine := p.apps[app]
	if mine == nil {
		mine = make(chan struct{}, p.each)
		p.apps[app] = mine
	}
	p.mu.Unlock()
	deadline := time.Now().Add(p.wait)
	if !take(ctx, mine, deadline) {
		return nil, false
	}
	if !take(ctx, p.all, deadline) {
		<-mine
		return nil, false
	}
	return func() { <-p.all; <-mine }, true
}

// take puts a token in slots, waiting until ctx ends or deadline passes. A
// free slot is taken at once, without the timer a wait needs: most calls
// find one.
func take(ctx context.Context, slots chan struct{}, deadline time.Time) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// parseWait is how long a body waits for its turn before the call gets 503.
const parseWait = 2 * time.Second
