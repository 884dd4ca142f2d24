package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestExplainConnectError covers the errors as paho returns them, including
// those a real broker produces only by chance (a hang-up overtaking a TLS
// alert) or not at all (Mosquitto never sends CONNACK code 4 or 2 here).
func TestExplainConnectError(t *testing.T) {
	// network wraps err as paho does for a failure below MQTT.
	network := func(err error) error { return fmt.Errorf("%w : %w", packets.ErrorNetworkError, err) }
	verify := func(err error) error { return network(&tls.CertificateVerificationError{Err: err}) }
	alert := func(a tls.AlertError) error { return network(&net.OpError{Op: "remote error", Err: a}) }
	sys := func(op, call string, errno error) error {
		return network(&net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(call, errno)})
	}
	tlsCfg := Config{URL: "ssl://broker:8883", CAFile: "/etc/ew/ca.pem"}
	mtlsCfg := tlsCfg
	mtlsCfg.CertFile, mtlsCfg.KeyFile = "/etc/ew/dev.crt", "/etc/ew/dev.key"
	userCfg := tlsCfg
	userCfg.Username, userCfg.PasswordFile = "dev-1", "/etc/ew/pw"
	otherErr := errors.New("something else")

	for _, tc := range []struct {
		name string
		cfg  Config
		err  error
		want string // the whole message
	}{
		{"unknown authority, ca_file", tlsCfg, verify(x509.UnknownAuthorityError{}),
			"broker certificate is not signed by a CA in ca_file /etc/ew/ca.pem: network Error : tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"unknown authority, system roots", Config{URL: "ssl://broker:8883"}, verify(x509.UnknownAuthorityError{}),
			"broker certificate is not signed by a CA in the system roots (set ca_file to the broker's CA): network Error : tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"broker certificate expired", tlsCfg, verify(x509.CertificateInvalidError{Reason: x509.Expired, Detail: "current time is after"}),
			"broker certificate has expired or is not yet valid (renew it, or check this device's clock): network Error : tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time is after"},
		{"broker certificate unfit otherwise", tlsCfg, verify(x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}),
			"network Error : tls: failed to verify certificate: x509: certificate is not authorized to sign other certificates"},
		{"hostname mismatch", tlsCfg, verify(x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"other"}}, Host: "broker"}),
			`broker certificate is not valid for host "broker" (use a name or address it lists in url): network Error : tls: failed to verify certificate: x509: certificate is valid for other, not broker`},
		{"client certificate required, none set", tlsCfg, alert(116),
			"broker requires a client certificate (set cert_file and key_file): network Error : remote error: tls: certificate required"},
		{"client certificate required, one set", mtlsCfg, alert(116),
			"broker requires a client certificate and did not accept cert_file /etc/ew/dev.crt: network Error : remote error: tls: certificate required"},
		{"client certificate expired", mtlsCfg, alert(45),
			"broker refused client certificate cert_file /etc/ew/dev.crt: it has expired or is not yet valid: network Error : remote error: tls: expired certificate"},
		{"client certificate from unknown CA", mtlsCfg, alert(48),
			"broker refused client certificate cert_file /etc/ew/dev.crt: it does not trust the CA that signed it: network Error : remote error: tls: unknown certificate authority"},
		{"client certificate bad", mtlsCfg, alert(42),
			"broker refused client certificate cert_file /etc/ew/dev.crt: network Error : remote error: tls: bad certificate"},
		{"client certificate revoked", mtlsCfg, alert(44),
			"broker refused client certificate cert_file /etc/ew/dev.crt: network Error : remote error: tls: revoked certificate"},
		{"other alert", mtlsCfg, alert(40),
			"network Error : remote error: tls: handshake failure"},
		{"bad username or password", userCfg, packets.ErrorRefusedBadUsernameOrPassword,
			`broker refused user "dev-1": wrong username or password, or the user may not connect (password from password_file /etc/ew/pw): bad user name or password`},
		{"not authorised, password_env", Config{URL: "tcp://b:1883", Username: "dev-1", PasswordEnv: "EW_PW"}, packets.ErrorRefusedNotAuthorised,
			`broker refused user "dev-1": wrong username or password, or the user may not connect (password from environment variable EW_PW): not Authorized`},
		{"not authorised, no password", Config{URL: "tcp://b:1883", Username: "dev-1"}, packets.ErrorRefusedNotAuthorised,
			`broker refused user "dev-1": wrong username or password, or the user may not connect (no password set: use password_file or password_env): not Authorized`},
		{"not authorised, no username", tlsCfg, packets.ErrorRefusedNotAuthorised,
			"broker refused the connection: not authorised; it may require a username and password: not Authorized"},
		{"client id rejected", Config{URL: "tcp://b:1883", ClientID: "dev 1"}, packets.ErrorRefusedIDRejected,
			`broker rejected client_id "dev 1": identifier rejected`},
		{"connection refused", Config{URL: "tcp://b:1883"}, sys("dial", "connect", syscall.ECONNREFUSED),
			"nothing is listening on that port (is the broker running, and the port right?): network Error : dial tcp: connect: connection refused"},
		{"reset, plain", Config{URL: "tcp://b:8883"}, sys("read", "read", syscall.ECONNRESET),
			"broker closed the connection during connect: it may expect TLS on this port (use ssl://): network Error : read tcp: read: connection reset by peer"},
		{"reset, TLS without client certificate", tlsCfg, sys("write", "write", syscall.ECONNRESET),
			"broker closed the connection during connect: it may require a client certificate (cert_file is not set), or not speak TLS on this port: network Error : write tcp: write: connection reset by peer"},
		{"EOF, TLS with client certificate", mtlsCfg, network(io.EOF),
			"broker closed the connection during connect: it may have refused client certificate cert_file /etc/ew/dev.crt (see the broker's log): network Error : EOF"},
		{"unrecognised", tlsCfg, otherErr, "something else"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := explainConnectError(tc.err, tc.cfg)
			if got.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("%v does not wrap the original error", got)
			}
		})
	}
}
