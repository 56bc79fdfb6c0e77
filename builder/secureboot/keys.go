package secureboot

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
	"unicode/utf16"

	"github.com/sassoftware/relic/v8/lib/pkcs7"
)

// GUIDs of the UEFI specification, as strings.
const (
	// GlobalVariable owns PK and KEK.
	GlobalVariable = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
	// ImageSecurityDatabase owns db and dbx.
	ImageSecurityDatabase = "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
	certX509              = "a5c059a1-94e4-4aa7-87b5-ab155c2bf072"
	certTypePKCS7         = "4aafd29d-68df-49ee-8aa9-347d375665a7"
	// Owner is the signature owner GUID bulkhead writes into its lists.
	Owner = "5d4f3a1e-8c0b-4b6e-9f31-6b756c6b6864"
)

// Variable attributes: non-volatile, boot and runtime access, time-based
// authenticated writes.
const authAttributes = 0x01 | 0x02 | 0x04 | 0x20

// Key is one of the three keys: its private key and certificate.
type Key struct {
	Name string // "PK", "KEK" or "db"
	Key  *rsa.PrivateKey
	Cert *x509.Certificate
}

// KeyPEM and CertPEM encode the key (PKCS #8) and certificate as PEM.
func (k *Key) KeyPEM() []byte {
	der, _ := x509.MarshalPKCS8PrivateKey(k.Key)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// CertPEM is the certificate as PEM.
func (k *Key) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Cert.Raw})
}

// Keys is a machine's key hierarchy: PK signs KEK's list, KEK signs db's,
// db signs the boot programs.
type Keys struct {
	PK, KEK, DB *Key
}

// GenerateKeys makes three RSA 2048 keys (the size every UEFI firmware
// verifies) with self-signed certificates valid from notBefore for
// twenty years, named "<owner> PK" and so on.
func GenerateKeys(owner string, notBefore time.Time) (*Keys, error) {
	var ks Keys
	for _, p := range []struct {
		name string
		dst  **Key
	}{{"PK", &ks.PK}, {"KEK", &ks.KEK}, {"db", &ks.DB}} {
		k, err := generateKey(owner+" "+p.name, notBefore)
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", p.name, err)
		}
		k.Name = p.name
		*p.dst = k
	}
	return &ks, nil
}

func generateKey(cn string, notBefore time.Time) (*Key, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notBefore.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Key{Key: key, Cert: cert}, nil
}

// SignatureList is an EFI_SIGNATURE_LIST holding one X.509 certificate
// owned by owner (a GUID string).
func SignatureList(cert *x509.Certificate, owner string) []byte {
	var b bytes.Buffer
	b.Write(guid(certX509))
	binary.Write(&b, binary.LittleEndian, uint32(28+16+len(cert.Raw))) // SignatureListSize
	binary.Write(&b, binary.LittleEndian, uint32(0))                   // SignatureHeaderSize
	binary.Write(&b, binary.LittleEndian, uint32(16+len(cert.Raw)))    // SignatureSize
	b.Write(guid(owner))
	b.Write(cert.Raw)
	return b.Bytes()
}

// AuthVariable is an authenticated write of the EFI variable name (of
// vendor GUID vendor) with data, signed by signer at time t: an
// EFI_VARIABLE_AUTHENTICATION_2 header (EFI_TIME, then a
// WIN_CERTIFICATE_UEFI_GUID holding a detached PKCS #7 signature over
// name, vendor, attributes, time and data) followed by data. This is
// what the .auth files systemd-boot enrolls hold.
func AuthVariable(name, vendor string, data []byte, t time.Time, signer *Key) ([]byte, error) {
	ts := efiTime(t)
	var signed bytes.Buffer
	for _, u := range utf16.Encode([]rune(name)) {
		binary.Write(&signed, binary.LittleEndian, u)
	}
	signed.Write(guid(vendor))
	binary.Write(&signed, binary.LittleEndian, uint32(authAttributes))
	signed.Write(ts)
	signed.Write(data)
	digest := sha256.Sum256(signed.Bytes())
	sb := pkcs7.NewBuilder(signer.Key, []*x509.Certificate{signer.Cert}, crypto.SHA256)
	if err := sb.SetDetachedContent(pkcs7.OidData, digest[:]); err != nil {
		return nil, err
	}
	psd, err := sb.Sign()
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", name, err)
	}
	// The certificate holds the bare SignedData, not wrapped in a
	// ContentInfo: EDK II finds the digest algorithm at a fixed offset
	// in it and refuses anything else (Security Policy Violation).
	sig, err := asn1.Marshal(psd.Content)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(ts)
	binary.Write(&out, binary.LittleEndian, uint32(8+16+len(sig))) // dwLength
	binary.Write(&out, binary.LittleEndian, uint16(0x0200))        // wRevision
	binary.Write(&out, binary.LittleEndian, uint16(0x0ef1))        // WIN_CERT_TYPE_EFI_GUID
	out.Write(guid(certTypePKCS7))
	out.Write(sig)
	out.Write(data)
	return out.Bytes(), nil
}

// efiTime is an EFI_TIME of t in UTC with the fields time-based
// authentication requires zero (nanoseconds, time zone, daylight).
func efiTime(t time.Time) []byte {
	t = t.UTC()
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, uint16(t.Year()))
	b[2], b[3], b[4], b[5], b[6] = byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(t.Second())
	return b
}

// EnrollFiles are the .auth files that put ks into a machine in setup
// mode, by name (PK.auth, KEK.auth, db.auth): PK's list signed by PK,
// KEK's by PK, db's by KEK.
func EnrollFiles(ks *Keys, t time.Time) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, v := range []struct {
		key    *Key
		vendor string
		signer *Key
	}{{ks.PK, GlobalVariable, ks.PK}, {ks.KEK, GlobalVariable, ks.PK}, {ks.DB, ImageSecurityDatabase, ks.KEK}} {
		b, err := AuthVariable(v.key.Name, v.vendor, SignatureList(v.key.Cert, Owner), t, v.signer)
		if err != nil {
			return nil, err
		}
		out[v.key.Name+".auth"] = b
	}
	return out, nil
}

// guid encodes a GUID string in EFI's mixed-endian byte order.
func guid(s string) []byte {
	var raw [16]byte
	hex := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			hex = append(hex, s[i])
		}
	}
	for i := range raw {
		fmt.Sscanf(string(hex[2*i:2*i+2]), "%02x", &raw[i])
	}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b, binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(b[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(b[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(b[8:], raw[8:])
	return b
}
