package policy

import (
	"fmt"
	"net/url"
	"sort"

	"github.com/consentgate/consentgate/configs"
)

// returnTargets reads data.apps.<app>.oauth_return_to: where each app may
// have its end users sent back after an OAuth2 authorization, beside what else
// the app may do. An app with none may send them nowhere. A revision with an
// entry that is not a safe return URL does not load.
func returnTargets(data map[string]any) (map[string][]*url.URL, error) {
	apps, _ := data["apps"].(map[string]any)
	out := map[string][]*url.URL{}
	ids := make([]string, 0, len(apps))
	for id := range apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		app, _ := apps[id].(map[string]any)
		raw, ok := app["oauth_return_to"]
		if !ok {
			continue
		}
		list, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("data.apps.%s.oauth_return_to: not a list of URLs", id)
		}
		for i, e := range list {
			s, _ := e.(string)
			u, err := configs.ReturnToURL(s)
			switch {
			case err != nil:
				return nil, fmt.Errorf("data.apps.%s.oauth_return_to[%d]: %w", id, i, err)
			case u.RawQuery != "":
				return nil, fmt.Errorf("data.apps.%s.oauth_return_to[%d]: %q: an allowed return URL carries no query (apps add their own at start)", id, i, s)
			}
			out[id] = append(out[id], u)
		}
	}
	return out, nil
}

// ReturnTo is where app may send its end users back after an authorization,
// in the revision in service.
func (e *Engine) ReturnTo(app string) []*url.URL { return e.cur.Load().returnTo[app] }
