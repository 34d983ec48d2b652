package policy

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// loadError lists the loader's errors as file:line: message, relative to the
// policy directory. OPA's parser reports a bracket left open where it gave up,
// at the end of the file, however far below the mistake that is: such an
// error names the line of the bracket never closed instead.
func loadError(dir string, err error) error {
	var errs []error
	var le loader.Errors
	var ae ast.Errors
	switch {
	case errors.As(err, &le):
		errs = le
	case errors.As(err, &ae):
		for _, e := range ae {
			errs = append(errs, e)
		}
	default:
		return err
	}
	var lines []string
	var prev *ast.Error
	for _, e := range errs {
		var ae *ast.Error
		if !errors.As(e, &ae) || ae.Location == nil {
			lines = append(lines, e.Error())
			continue
		}
		file, row, msg := ae.Location.File, ae.Location.Row, ae.Message
		if ae.Code == ast.ParseErr && strings.Contains(msg, "unexpected eof") {
			if src, rerr := os.ReadFile(file); rerr == nil {
				if at, open := unclosed(src); at > 0 {
					row, msg = at, fmt.Sprintf("%q is never closed (the parser reached the end of the file at line %d: %s)", open, row, msg)
				}
			}
		}
		if prev != nil && prev.Location.File == file && prev.Location.Row == ae.Location.Row && strings.HasPrefix(ae.Message, prev.Message) {
			continue // the parser's second word on the same mistake
		}
		prev = ae
		lines = append(lines, fmt.Sprintf("%s:%d: %s: %s", relative(dir, file), row, ae.Code, msg))
	}
	return errors.New(strings.Join(lines, "\n"))
}

// unclosed returns the line and character of the first bracket in Rego source
// that is never closed, skipping comments and strings; 0 when all close.
func unclosed(src []byte) (int, string) {
	type open struct {
		c    byte
		line int
	}
	var stack []open
	line := 1
	for i := 0; i < len(src); i++ {
		switch c := src[i]; c {
		case '\n':
			line++
		case '#':
			for i+1 < len(src) && src[i+1] != '\n' {
				i++
			}
		case '"':
			for i++; i < len(src) && src[i] != '"' && src[i] != '\n'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
			if i < len(src) && src[i] == '\n' {
				line++
			}
		case '`':
			for i++; i < len(src) && src[i] != '`'; i++ {
				if src[i] == '\n' {
					line++
				}
			}
		case '{', '[', '(':
			stack = append(stack, open{c, line})
		case '}', ']', ')':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if len(stack) == 0 {
		return 0, ""
	}
	return stack[0].line, string(stack[0].c)
}
