package brokertest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
)

// TestPKIVerifies checks the certificates mean what their names say, with
// the same verification the uplink's TLS client does.
func TestPKIVerifies(t *testing.T) {
	p := NewPKI(t)
	verify := func(ca *CA, kp KeyPair, host string, usage x509.ExtKeyUsage) error {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(kp.CertFile, kp.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		pem, err := os.ReadFile(ca.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			t.Fatalf("%s: no certificate", ca.CertFile)
		}
		_, err = pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if err := verify(p.CA, p.Server, host, x509.ExtKeyUsageServerAuth); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if err := verify(p.CA, p.Client, "", x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	var invalid x509.CertificateInvalidError
	if err := verify(p.CA, p.ExpiredClient, "", x509.ExtKeyUsageClientAuth); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Errorf("expired client certificate: got %v, want expired", err)
	}
	var unknown x509.UnknownAuthorityError
	if err := verify(p.CA, p.OtherClient, "", x509.ExtKeyUsageClientAuth); !errors.As(err, &unknown) {
		t.Errorf("other CA's client certificate against CA: got %v, want unknown authority", err)
	}
	if err := verify(p.OtherCA, p.Server, "127.0.0.1", x509.ExtKeyUsageServerAuth); !errors.As(err, &unknown) {
		t.Errorf("server certificate against the other CA: got %v, want unknown authority", err)
	}
}
