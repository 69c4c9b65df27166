package daemon

import (
	"errors"
	"net/url"
	"strings"
)

// redacted replaces a secret in a URL shown to people.
const redacted = "xxxxx"

// redactURL returns a webhook URL as the daemon shows it (API answers, the
// command line, errors, dead letters, logs): the password of its userinfo
// and the value of every query parameter replaced by "xxxxx", since
// receivers often take their credentials there
// (https://user:PASSWORD@host/hook?api_key=KEY). A parameter without a
// value may itself be the secret (?TOKEN) and is replaced whole. A URL that
// does not parse is not shown at all. Deliveries use the full URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a malformed URL, not shown)"
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			if p == "" {
				continue
			}
			if name, _, ok := strings.Cut(p, "="); ok {
				parts[i] = name + "=" + redacted
			} else {
				parts[i] = redacted
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.Redacted()
}

// withoutURL returns the cause inside a *url.Error, whose text repeats the
// full URL (net/http strips the password, not the query): the caller names
// the URL itself, redacted.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
