package browser

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/chromedp/chromedp"
)

// A page that never answers fails the call, not the whole test run.
const timeout = 15 * time.Second

// Open loads url in the browser of ctx and returns the HTTP status of the
// document; a page that does not load (TLS refused, say) is an error naming
// Chromium's net:: code.
func Open(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		return 0, err
	}
	return int(resp.Status), nil
}

// Text is the text of the page's body as the browser renders it.
func Text(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
}

// Submit fills the fields (by name) of the form that the CSS selector form
// finds, clicks its submit button as a user would, and returns the HTTP status
// of the page that the submission loads.
func Submit(ctx context.Context, form string, fields map[string]string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var steps []chromedp.Action[chromedp.Void]
	for name, value := range fields {
		steps = append(steps, chromedp.SetValue(chromedp.CSS(form+` [name="`+name+`"]`), value))
	}
	// A <button> with no type submits too.
	steps = append(steps, chromedp.Click(chromedp.CSS(form+` [type="submit"], `+form+` button:not([type])`)))
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		return 0, err
	}
	return int(resp.Status), nil
}

// Screenshot writes the whole page, not only the window, as a PNG to path.
func Screenshot(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}
