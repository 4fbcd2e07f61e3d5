package config

import (
	"fmt"
	"os"
	"strings"
)

// CookieFromEnv returns the Erlang cookie: PHAROS_COOKIE, else the cookie file (default
// ~/.erlang.cookie), which must not be readable by group or others (as erl demands).
func CookieFromEnv(getenv func(string) string, cookieFile string, stat func(string) (os.FileInfo, error), readFile func(string) ([]byte, error)) (string, error) {
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
	info, err := stat(cookieFile)
	if err != nil {
		return "", &KeyError{Key: "node.cookie_file", Reason: fmt.Sprintf("no PHAROS_COOKIE and cannot read the cookie file: %v", err)}
	}
	if info.Mode().Perm()&0o077 != 0 {
		return "", &KeyError{Key: "node.cookie_file", Reason: fmt.Sprintf("%s is accessible by others (mode %#o): chmod 400 it, as erl demands", cookieFile, info.Mode().Perm())}
	}
	data, err := readFile(cookieFile)
	if err != nil {
		return "", &KeyError{Key: "node.cookie_file", Reason: err.Error()}
	}
	cookie := strings.TrimSpace(string(data))
	if cookie == "" {
		return "", &KeyError{Key: "node.cookie_file", Reason: cookieFile + " is empty"}
	}
	return cookie, nil
}
