package config

import (
	"errors"
	"fmt"
	"os"

	"github.com/pharos-node/pharos-node/node"
)

// CookieFromEnv returns the Erlang cookie: PHAROS_COOKIE, else the cookie file (default
// $HOME/.erlang.cookie) read by node.ReadCookieFile, which refuses a file readable by group or
// others (as erl does). Errors name the key node.cookie_file and never hold the cookie.
func CookieFromEnv(getenv func(string) string, cookieFile string) (string, error) {
	if c := getenv("PHAROS_COOKIE"); c != "" {
		return c, nil
	}
	if cookieFile == "" {
		home := getenv("HOME")
		if home == "" {
			return "", &KeyError{Key: "node.cookie_file", Reason: "no PHAROS_COOKIE, and HOME is unset"}
		}
		cookieFile = home + "/.erlang.cookie"
	}
	cookie, err := node.ReadCookieFile(cookieFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return "", &KeyError{Key: "node.cookie_file", Reason: fmt.Sprintf("no PHAROS_COOKIE and cannot read the cookie file: %v", err)}
		}
		return "", &KeyError{Key: "node.cookie_file", Reason: err.Error()}
	}
	return cookie, nil
}
