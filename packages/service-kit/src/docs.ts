import swagger, { type SwaggerOptions } from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

type SecuritySchemes = NonNullable<
  NonNullable<
    NonNullable<Extract<SwaggerOptions, { openapi?: unknown }>['openapi']>['components']
  >['securitySchemes']
>;
type SecurityScheme = SecuritySchemes[string];

/** The API-key scheme both services accept, as OpenAPI describes it. */
export const apiKeySecurityScheme: SecurityScheme = {
  type: 'apiKey',
  in: 'header',
  name: 'Authorization',
  description: '`Authorization: token <API key>` or `Authorization: Bearer <API key>`',
};

export interface DocsOptions {
  title: string;
  version: string;
  description: string;
  /** Default: `{ apiKey: apiKeySecurityScheme }`. */
  securitySchemes?: Record<string, SecurityScheme>;
  tags?: { name: string; description?: string }[];
}

/** The OpenAPI 3.1 document at `/openapi.json` and the interactive docs at `/docs`. */
export const docsPlugin = fp(
  async (app: FastifyInstance, opts: DocsOptions) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: opts.title, version: opts.version, description: opts.description },
        ...(opts.tags ? { tags: opts.tags } : {}),
        components: { securitySchemes: opts.securitySchemes ?? { apiKey: apiKeySecurityScheme } },
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'service-kit-docs', fastify: '5.x' },
);
