import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkedAddresses, DestinationRefused, refusedAddress } from './destination.ts';

const open = { denyPrivateNetworks: false };
const strict = { denyPrivateNetworks: true };

describe('SMTP destination rule', () => {
  test('link-local and cloud metadata addresses are refused always', () => {
    for (const address of [
      '169.254.169.254',
      '169.254.0.1',
      'fe80::1',
      'febf::1',
      'fe80::1%eth0',
      'fd00:ec2::254',
      '100.100.100.200',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
    ]) {
      assert.match(refusedAddress(address, open) ?? '', /link-local/, address);
    }
  });

  test('private and loopback ranges: allowed by default, refused with denyPrivateNetworks', () => {
    for (const address of [
      '127.0.0.1',
      '10.0.0.5',
      '172.16.1.1',
      '172.31.255.255',
      '192.168.1.10',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fd12:3456::1',
      '::ffff:10.0.0.1',
    ]) {
      assert.equal(refusedAddress(address, open), undefined, address);
      assert.match(refusedAddress(address, strict) ?? '', /private or loopback/, address);
    }
  });

  test('public addresses are allowed under both rules', () => {
    for (const address of ['93.184.215.14', '172.32.0.1', '100.128.0.1', '2001:db8::25', '169.255.0.1']) {
      assert.equal(refusedAddress(address, open), undefined, address);
      assert.equal(refusedAddress(address, strict), undefined, address);
    }
  });

  test('every resolved address is checked: one metadata address among good ones refuses the name', async () => {
    const lookup = async () => ['93.184.215.14', '169.254.169.254'];
    await assert.rejects(checkedAddresses('mail.example', open, lookup), (err) => {
      assert.ok(err instanceof DestinationRefused);
      assert.equal(
        err.message,
        'refusing to connect to mail.example (resolves to 169.254.169.254): a link-local or cloud metadata address',
      );
      return true;
    });
    assert.deepEqual(await checkedAddresses('mail.example', open, async () => ['93.184.215.14']), [
      '93.184.215.14',
    ]);
    // an IP literal (bracketed or not) is not looked up
    assert.deepEqual(await checkedAddresses('[2001:db8::25]', open, async () => assert.fail('looked up')), [
      '2001:db8::25',
    ]);
  });
});
