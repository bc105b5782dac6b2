import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EnvError } from './env.ts';
import { tracesExportSettings } from './tracing.ts';

describe('tracesExportSettings: the standard OTEL_* variables', () => {
  const read = (env: NodeJS.ProcessEnv) => tracesExportSettings(env, 'sitemail-accounts');

  it('exports nothing by default, under the default service name', () => {
    assert.deepEqual(read({}), { exporter: 'none', serviceName: 'sitemail-accounts' });
  });

  it('an OTLP endpoint (general or for traces) switches OTLP export on', () => {
    assert.equal(read({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).exporter, 'otlp');
    assert.equal(read({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }).exporter, 'otlp');
    // Empty counts as unset, as compose files pass VAR=.
    assert.equal(read({ OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }).exporter, 'none');
  });

  it('OTEL_TRACES_EXPORTER names the exporter, in any case; none wins over an endpoint', () => {
    assert.equal(read({ OTEL_TRACES_EXPORTER: 'otlp' }).exporter, 'otlp');
    assert.equal(read({ OTEL_TRACES_EXPORTER: 'Console' }).exporter, 'console');
    assert.equal(
      read({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).exporter,
      'none',
    );
  });

  it('OTEL_SDK_DISABLED=true exports nothing even when an exporter is named', () => {
    assert.equal(
      read({
        OTEL_SDK_DISABLED: 'true',
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c',
      }).exporter,
      'none',
    );
    assert.equal(read({ OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' }).exporter, 'otlp');
  });

  it('OTEL_SERVICE_NAME overrides the default name', () => {
    assert.equal(read({ OTEL_SERVICE_NAME: 'accounts-eu' }).serviceName, 'accounts-eu');
    assert.equal(read({ OTEL_SERVICE_NAME: '' }).serviceName, 'sitemail-accounts');
  });

  it('an exporter this product does not have is an EnvError naming the variable and the value', () => {
    assert.throws(
      () => read({ OTEL_TRACES_EXPORTER: 'zipkin' }),
      (err: unknown) =>
        err instanceof EnvError &&
        err.message === 'OTEL_TRACES_EXPORTER must be one of otlp, console, none, not "zipkin"',
    );
  });
});
