import { ApiKeyPrincipal, CurrentApiKeyResponse, TenancyService } from '@app/tenancy';
import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentApiKey, RequireScope } from '../auth/auth.decorators';

/** What a project API key can learn about itself (the console's sign-in asks this). */
@ApiTags('api-keys')
@Controller('api-keys')
export class ApiKeysController {
  constructor(private readonly tenancy: TenancyService) {}

  @Get('current')
  @RequireScope('read')
  @ApiOperation({
    summary: 'The API key this request presents: its scopes and its project',
    description:
      'Lets a client find out, from the key alone, which project it works in and what it may do (a `read` key may not change anything; `manage` may).',
  })
  @ApiOkResponse({ type: CurrentApiKeyResponse })
  current(@CurrentApiKey() key: ApiKeyPrincipal): Promise<CurrentApiKeyResponse> {
    return this.tenancy.currentApiKey(key.projectId, key.keyId);
  }
}
