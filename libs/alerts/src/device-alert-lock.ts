import {
  LOCK_CLASS,
  LockUnless,
  lockForTransaction,
  tryLockForTransaction,
  tryLockForTransactionUnless,
} from '@app/database';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';

/**
 * A device's alerts change one transaction at a time: rule evaluation, a manual
 * acknowledge or resolve, and closing a disabled rule's alerts all take this
 * transaction-scoped advisory lock on the device first. The partial unique index on
 * active alerts backs it.
 */
@Injectable()
export class DeviceAlertLock {
  /** Waits for the lock. */
  take(em: EntityManager, deviceId: string): Promise<void> {
    return lockForTransaction(em, LOCK_CLASS.DEVICE_EVALUATION, deviceId);
  }

  /** Takes the lock, or returns false at once when another transaction holds it. */
  tryTake(em: EntityManager, deviceId: string): Promise<boolean> {
    return tryLockForTransaction(em, LOCK_CLASS.DEVICE_EVALUATION, deviceId);
  }

  /** {@link tryTake} unless `unless` holds, checked in the same statement: `declined` then. */
  tryTakeUnless(
    em: EntityManager,
    deviceId: string,
    unless: LockUnless,
  ): Promise<boolean | 'declined'> {
    return tryLockForTransactionUnless(em, LOCK_CLASS.DEVICE_EVALUATION, deviceId, unless);
  }
}
