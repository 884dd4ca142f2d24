package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TLS alerts a broker sends about our client certificate (RFC 8446 §6).
// crypto/tls names none of them.
const (
	alertBadCertificate         tls.AlertError = 42
	alertUnsupportedCertificate tls.AlertError = 43
	alertCertificateRevoked     tls.AlertError = 44
	alertCertificateExpired     tls.AlertError = 45
	alertCertificateUnknown     tls.AlertError = 46
	alertUnknownCA              tls.AlertError = 48
	alertCertificateRequired    tls.AlertError = 116
)

// explainConnectError turns a failed connection attempt into an error an
// operator can act on: it says which setting to look at and wraps err. It
// never includes the password. Errors it does not recognise come back as
// they are.
func explainConnectError(err error, cfg Config) error {
	var (
		unknownAuthority x509.UnknownAuthorityError
		invalid          x509.CertificateInvalidError
		hostname         x509.HostnameError
	)
	switch {
	case errors.As(err, &unknownAuthority):
		if cfg.CAFile == "" {
			return fmt.Errorf("broker certificate is not signed by a CA in the system roots (set ca_file to the broker's CA): %w", err)
		}
		return fmt.Errorf("broker certificate is not signed by a CA in ca_file %s: %w", cfg.CAFile, err)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Errorf("broker certificate has expired or is not yet valid (renew it, or check this device's clock): %w", err)
	case errors.As(err, &hostname):
		return fmt.Errorf("broker certificate is not valid for host %q (use a name or address it lists in url): %w", hostname.Host, err)
	}

	if alert, ok := remoteAlert(err); ok {
		switch alert {
		case alertCertificateRequired:
			if cfg.CertFile == "" {
				return fmt.Errorf("broker requires a client certificate (set cert_file and key_file): %w", err)
			}
			return fmt.Errorf("broker requires a client certificate and did not accept cert_file %s: %w", cfg.CertFile, err)
		case alertCertificateExpired:
			return fmt.Errorf("broker refused client certificate cert_file %s: it has expired or is not yet valid: %w", cfg.CertFile, err)
		case alertUnknownCA:
			return fmt.Errorf("broker refused client certificate cert_file %s: it does not trust the CA that signed it: %w", cfg.CertFile, err)
		default:
			return fmt.Errorf("broker refused client certificate cert_file %s: %w", cfg.CertFile, err)
		}
	}

	// paho returns these sentinels as they are for a CONNACK refusal.
	// Mosquitto answers a wrong password with "not authorised".
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword),
		errors.Is(err, packets.ErrorRefusedNotAuthorised):
		if cfg.Username == "" {
			return fmt.Errorf("broker refused the connection: not authorised; it may require a username and password: %w", err)
		}
		return fmt.Errorf("broker refused user %q: wrong username or password, or the user may not connect (%s): %w",
			cfg.Username, passwordSource(cfg), err)
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return fmt.Errorf("broker rejected client_id %q: %w", cfg.ClientID, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing is listening on that port (is the broker running, and the port right?): %w", err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// A broker that refuses a client certificate sends an alert and
		// hangs up; when the hang-up overtakes the alert, this is all we
		// get. The same happens when only one side speaks TLS.
		switch {
		case !isTLS(cfg.URL):
			return fmt.Errorf("broker closed the connection during connect: it may expect TLS on this port (use ssl://): %w", err)
		case cfg.CertFile == "":
			return fmt.Errorf("broker closed the connection during connect: it may require a client certificate (cert_file is not set), or not speak TLS on this port: %w", err)
		default:
			return fmt.Errorf("broker closed the connection during connect: it may have refused client certificate cert_file %s (see the broker's log): %w", cfg.CertFile, err)
		}
	}
	return err
}

// remoteAlert returns the TLS alert the broker sent, if err carries one of
// those about certificates. crypto/tls reports a received alert as a
// *net.OpError "remote error" around an unexported type whose text is that
// of the matching tls.AlertError.
func remoteAlert(err error) (tls.AlertError, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	for _, a := range []tls.AlertError{
		alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked,
		alertCertificateExpired, alertCertificateUnknown, alertUnknownCA, alertCertificateRequired,
	} {
		if op.Err.Error() == a.Error() {
			return a, true
		}
	}
	return 0, false
}

// passwordSource says where the password came from, so the operator knows
// what to check without the password ever being shown.
func passwordSource(cfg Config) string {
	switch {
	case cfg.PasswordFile != "":
		return "password from password_file " + cfg.PasswordFile
	case cfg.PasswordEnv != "":
		return "password from environment variable " + cfg.PasswordEnv
	}
	return "no password set: use password_file or password_env"
}

func isTLS(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		return true
	}
	return false
}
