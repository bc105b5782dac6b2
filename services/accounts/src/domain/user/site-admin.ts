import type { SetSiteAdmin } from './commands.ts';
import type { Decision } from './decision.ts';
import { refuse } from './refusals.ts';
import type { ActiveUser } from './types.ts';

/**
 * As in Sourcegraph: an admin cannot demote (or promote) themselves, so a site cannot lose its
 * last admin by accident.
 */
export function setSiteAdmin(command: SetSiteAdmin, user: ActiveUser): Decision {
  if (command.by === user.userId) {
    return refuse(
      'cannot-change-own-site-admin',
      'site admins cannot change their own site admin status',
      'siteAdmin',
    );
  }
  if (user.siteAdmin === command.siteAdmin) return [];
  return [{ type: 'SiteAdminChanged', data: { siteAdmin: command.siteAdmin, changedBy: command.by } }];
}
